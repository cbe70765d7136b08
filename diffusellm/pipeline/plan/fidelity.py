"""Phase 4 fidelity: does a plan carry out its spec, and which further operations did the issue ask for?

The spec decides the plan. A plan carries out its spec when every operation of the spec is in it: a
deterministic one (rename, parameters, move) exactly as the spec gives it, a generative one with the
same kind and target (the model may word the instruction or write the code). A plan may hold more
only when the issue's own words ask for more of an additive kind (a test, a new function): an issue
that says "rename `f` to `g` and add a test" becomes a rename plus a test, never a model-invented
rename or move in place of the one the spec names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from diffusellm.pipeline.normalise.cues import cued_kinds, read_issue
from diffusellm.pipeline.spec import GENERATIVE_KINDS, Operation, Spec

ADDABLE_KINDS = ("add_test", "add_function")
"""Kinds a plan may add to its spec when the issue asks for them: they add code and change none."""


def asked_extras(spec: Spec) -> frozenset[str]:
    """Additive kinds the issue's words ask for that the spec does not hold yet."""
    if not spec.description.strip():
        return frozenset()
    asked = cued_kinds(read_issue(spec.description)) & set(ADDABLE_KINDS)
    return frozenset(asked - {op.op for op in spec.operations})


def _key(op: Operation) -> tuple[str, str] | str:
    """What must match: kind and target for generative operations, everything for deterministic ones."""
    if op.op in GENERATIVE_KINDS:
        return (op.op, op.target)
    return op.model_dump_json(exclude_none=True)


def _describe(op: Operation) -> str:
    return f"{op.op} {op.target}"


def unmet(spec: Spec, operations: Sequence[Operation], extras: Iterable[str] = ()) -> list[str]:
    """Why `operations` do not carry out `spec` (empty when they do); `extras`: kinds it may add."""
    left = [_key(op) for op in operations]
    problems: list[str] = []
    for op in spec.operations:
        key = _key(op)
        if key in left:
            left.remove(key)
        else:
            problems.append(f"leaves out {_describe(op)}, which the spec asks for")
    allowed = set(extras)
    for op in operations:
        key = _key(op)
        if key not in left:
            continue
        left.remove(key)
        if op.op not in allowed:
            problems.append(f"adds {_describe(op)}, which the issue does not ask for")
    return problems


def missing_extras(operations: Sequence[Operation], extras: Iterable[str]) -> int:
    """How many of the additive kinds the issue asks for a plan leaves out."""
    kinds = {op.op for op in operations}
    return sum(1 for kind in set(extras) if kind not in kinds)
