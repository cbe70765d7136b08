"""Phase 7 commit builder, texts: operations in plain words, commit message in the repo's style."""

from __future__ import annotations

import re
from collections.abc import Sequence

from diffusellm.pipeline.spec import (
    AddFunction,
    AddParameter,
    AddTest,
    EditFunction,
    MoveSymbol,
    Operation,
    RemoveParameter,
    RenameSymbol,
    Spec,
)
from diffusellm.pipeline.understand.style.profile import CommitConvention

SUBJECT_MAX = 72
TRAILER = "Generated-by: diffusellm"
GITMOJI_REFACTOR = "\u267b\ufe0f"
GITMOJI_REFACTOR_CODE = ":recycle:"

# Conventional-commit type per operation; every operation so far keeps behaviour, so "refactor".
_OP_TYPE = {
    "rename_symbol": "refactor",
    "move_symbol": "refactor",
    "add_parameter": "refactor",
    "remove_parameter": "refactor",
    "edit_function": "fix",
    "add_function": "feat",
    "add_test": "test",
}
_CONVENTIONAL = re.compile(r"^(?P<type>[a-z]+)(?:\((?P<scope>[^)]+)\))?!?: \S")
_BRACKETED = re.compile(r"^\[(?P<scope>[^\]]+)\]\s*\S")
_SHORTCODE = re.compile(r"^:[a-z0-9_+-]+:")
_PREFIXES = (
    re.compile(r"^[a-z]+(?:\([^)]*\))?!?:\s+"),
    re.compile(r"^\[[^\]]*\]\s*"),
    re.compile(r"^:[a-z0-9_+-]+:\s*"),
    re.compile(r"^[^\w\s`'\"(\[]+\s+"),
)
_VERBS = frozenset({
    "add", "allow", "bump", "change", "clean", "convert", "create", "delete", "deprecate",
    "document", "drop", "ensure", "expose", "extract", "fix", "handle", "implement", "improve",
    "introduce", "make", "merge", "move", "pass", "refactor", "remove", "rename", "replace",
    "rework", "simplify", "split", "support", "tidy", "update", "upgrade", "use",
})

Op = Operation


def code_span(text: str) -> str:
    """Markdown inline code that survives backticks inside `text`."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def describe_operation(op: Op) -> str:
    """One operation in plain words (Markdown), e.g. "Rename `pkg.mod.f` to `g`"."""
    target = code_span(op.target)
    match op:
        case RenameSymbol():
            return f"Rename {target} to {code_span(op.new_name)}"
        case AddParameter():
            kind = "keyword-only " if op.kind == "keyword_only" else ""
            ann = f": {op.annotation}" if op.annotation else ""
            return f"Add {kind}parameter {code_span(f'{op.name}{ann} = {op.default}')} to {target}"
        case RemoveParameter():
            return f"Remove parameter {code_span(op.name)} from {target}"
        case MoveSymbol():
            return f"Move {target} to module {code_span(op.to_module)}"
        case EditFunction():
            return f"Rewrite {target}"
        case AddFunction():
            return f"Add function {target}"
        case AddTest():
            return f"Add a test for {target} in {code_span(op.path)}"


def plain_operation(op: Op) -> str:
    """One operation in plain words for a title, by short names: "Rename slugify to make_slug"."""
    name = op.target.rsplit(".", 1)[-1]
    match op:
        case RenameSymbol():
            return f"Rename {name} to {op.new_name}"
        case AddParameter():
            return f"Add parameter {op.name} to {name}"
        case RemoveParameter():
            return f"Remove parameter {op.name} from {name}"
        case MoveSymbol():
            return f"Move {name} to {op.to_module}"
        case EditFunction():
            return f"Change {name}"
        case AddFunction():
            return f"Add function {name}"
        case AddTest():
            return f"Add a test for {name}"


# A title whose verb claims a kind of change the operations do not make is replaced.
_CLAIMED_KINDS = {"rename": "rename_symbol", "move": "move_symbol"}


def change_title(spec: Spec) -> str:
    """A title that says what the operations change: the spec's own for one generated change (its words
    say more than "Change f") unless it claims a refactor that was not made, else the operations in
    plain words."""
    words = [plain_operation(op) for op in spec.operations]
    from_ops = words[0] + "".join(
        (" and " if i == len(words) - 1 else ", ") + w[:1].lower() + w[1:] for i, w in enumerate(words[1:], start=1)
    )
    kinds = {op.op for op in spec.operations}
    if len(spec.operations) != 1 or not kinds & {"edit_function", "add_function", "add_test"}:
        return from_ops
    verb = _base_verb(clean_title(spec.title).split(" ", 1)[0]) or ""
    claimed = _CLAIMED_KINDS.get(verb)
    return from_ops if claimed is not None and claimed not in kinds else spec.title


def _base_verb(word: str) -> str | None:
    """The bare verb of an inflected one ("Renames", "renamed", "renaming" → "rename")."""
    w = word.lower()
    candidates = [w]
    if w.endswith("ies") or w.endswith("ied"):
        candidates.append(w[:-3] + "y")
    if w.endswith(("es", "ed")):
        candidates += [w[:-2], w[:-1]]
    if w.endswith("s"):
        candidates.append(w[:-1])
    if w.endswith("ing"):
        candidates += [w[:-3], w[:-3] + "e"]
    if w.endswith(("ing", "ed")):
        stem = w[:-3] if w.endswith("ing") else w[:-2]
        if len(stem) > 2 and stem[-1] == stem[-2]:
            candidates.append(stem[:-1])
    return next((c for c in candidates if c in _VERBS), None)


def imperative(summary: str) -> str:
    """`summary` with its first word in the imperative mood when it is a known inflected verb."""
    first, _, rest = summary.partition(" ")
    verb = _base_verb(first)
    if verb is None or verb == first.lower():
        return summary
    verb = verb.capitalize() if first[:1].isupper() else verb
    return f"{verb} {rest}".rstrip()


def clean_title(title: str) -> str:
    """The title on one line, without a convention prefix it may already carry or a final period."""
    text = " ".join(title.split())
    for prefix in _PREFIXES:
        stripped = prefix.sub("", text, count=1)
        if stripped != text and stripped:
            text = stripped
            break
    return text.rstrip(".").strip() or text


def _lower_first(text: str) -> str:
    """Lower-case the first letter unless the first word is an acronym or CamelCase name."""
    first = text.split(" ", 1)[0]
    if any(c.isupper() for c in first[1:]):
        return text
    return text[:1].lower() + text[1:]


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-")


def _scopes(examples: Sequence[str], pattern: re.Pattern[str]) -> list[str]:
    found = [m.group("scope") for e in examples if (m := pattern.match(e)) and m.group("scope")]
    return [s.strip() for s in found]


def derive_scope(spec: Spec, known_scopes: Sequence[str]) -> str:
    """A scope for the first target: the deepest of its packages the history already uses as a
    scope, else its top package.
    """
    parts = spec.operations[0].target.split(".")
    modules = parts[:-1] or parts
    known = {s.lower() for s in known_scopes}
    for part in reversed(modules):
        if part.lower() in known:
            return part
    return modules[0]


def _uses_scopes(examples: Sequence[str]) -> bool:
    conventional = [m for e in examples if (m := _CONVENTIONAL.match(e))]
    scoped = [m for m in conventional if m.group("scope")]
    return bool(scoped) and 2 * len(scoped) >= len(conventional)


def _subject_prefix(convention: CommitConvention, spec: Spec, examples: Sequence[str]) -> str:
    if convention == "conventional":
        kinds = {_OP_TYPE.get(op.op, "refactor") for op in spec.operations}
        kind = kinds.pop() if len(kinds) == 1 else "refactor"
        if _uses_scopes(examples):
            return f"{kind}({derive_scope(spec, _scopes(examples, _CONVENTIONAL))}): "
        return f"{kind}: "
    if convention == "gitmoji":
        codes = sum(1 for e in examples if _SHORTCODE.match(e))
        emoji = GITMOJI_REFACTOR_CODE if 2 * codes > len(examples) else GITMOJI_REFACTOR
        return f"{emoji} "
    if convention == "bracketed":
        return f"[{derive_scope(spec, _scopes(examples, _BRACKETED))}] "
    return ""


def commit_message(convention: CommitConvention, spec: Spec, examples: Sequence[str]) -> str:
    """Subject in the repo's convention (≤ 72 chars), a bullet per operation, a trailer."""
    summary = imperative(clean_title(spec.title))
    if convention == "conventional":
        summary = _lower_first(summary)
    else:
        summary = summary[:1].upper() + summary[1:]
    prefix = _subject_prefix(convention, spec, examples)
    subject = prefix + _truncate(summary, SUBJECT_MAX - len(prefix))
    body = "\n".join(f"- {describe_operation(op)}" for op in spec.operations)
    return f"{subject}\n\n{body}\n\n{TRAILER}\n"
