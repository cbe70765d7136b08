"""Phase 3, rule side: issues that state a refactor plainly become a spec without asking a model.

Only explicit requests are handled ("rename `a` to `b`", "remove the `x` argument of `f`", "move `f` to
module `m`", "`f` should accept a keyword-only `x` flag (default False)"), and only when every name
resolves to exactly one of the localised candidates; anything else is left to the model.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pydantic import ValidationError

from diffusellm.pipeline.locate.context import Localised
from diffusellm.pipeline.normalise.cues import NOT_NAMES, parameters
from diffusellm.pipeline.spec import AddParameter, MoveSymbol, Operation, RemoveParameter, RenameSymbol, Spec

_NAME = r"`?(?P<{}>[A-Za-z_][\w.]*)`?"
_RENAME = re.compile(
    r"\brename (?:the )?(?:method |function |class )?"
    + _NAME.format("old")
    + r"(?: (?:method|function|class))? (?:to|as|into) "
    + _NAME.format("new"),
    re.IGNORECASE,
)
_CALLED = re.compile(
    _NAME.format("old") + r" should be (?:called|named|renamed to) " + _NAME.format("new"), re.IGNORECASE
)
_REMOVE = re.compile(
    r"\b(?:remove|drop|delete) (?:the )?(?:unused )?"
    + _NAME.format("param")
    + r" (?:argument|parameter|flag|keyword) (?:of|from) "
    + _NAME.format("func"),
    re.IGNORECASE,
)
_ARG_OF = re.compile(_NAME.format("param") + r" (?:argument|parameter|flag) of " + _NAME.format("func"), re.IGNORECASE)
_MOVE = re.compile(
    r"\bmove " + _NAME.format("sym") + r" (?:in)?to (?:a |the )?(?:new )?(?:module )?" + _NAME.format("mod"),
    re.IGNORECASE,
)
_ACCEPT = re.compile(
    _NAME.format("func")
    + r" should (?:accept|take|get) (?:a |an )?(?P<kw>keyword-only )?"
    + _NAME.format("name")
    + r" (?:flag|parameter|argument|option)(?: \(default (?P<default>[^)]+)\))?",
    re.IGNORECASE,
)
_REMOVAL_WORDS = re.compile(r"\b(remove|drop|delete)\b", re.IGNORECASE)
_ARROW = re.compile(r"(?<![\w.`])`?(?P<old>[A-Za-z_][\w.]*)`? ?(?:->|→|=>|⇒) ?`?(?P<new>[A-Za-z_]\w*)`?")
_RENAMING = re.compile(r"\brenam\w*", re.IGNORECASE)


def _resolve(loc: Localised, name: str) -> str | None:
    """The one candidate qualname `name` denotes (exactly, or as its dotted suffix), else None."""
    exact = [s.qualname for s in loc.symbols if s.qualname == name]
    if exact:
        return exact[0]
    matches = {s.qualname for s in loc.symbols if s.qualname.endswith("." + name)}
    return matches.pop() if len(matches) == 1 else None


def _rename(text: str, loc: Localised) -> Operation | None:
    match = _RENAME.search(text) or _CALLED.search(text)
    if not match or match.group("new").lower() in NOT_NAMES:  # "rename it to a better name"
        return None
    target = _resolve(loc, match.group("old"))
    new_name = match.group("new").rsplit(".", 1)[-1]
    return RenameSymbol(op="rename_symbol", target=target, new_name=new_name) if target else None


def _renames(text: str, loc: Localised) -> list[Operation]:
    """"Rename …: `a` -> `b`, `c` -> `d`": one rename per arrow, when every old name resolves."""
    if not _RENAMING.search(text):
        return []
    found: list[Operation] = []
    for match in _ARROW.finditer(text):
        target = _resolve(loc, match.group("old"))
        if target is None:
            return []
        found.append(RenameSymbol(op="rename_symbol", target=target, new_name=match.group("new")))
    return found


def _remove(text: str, loc: Localised) -> Operation | None:
    match = _REMOVE.search(text)
    if not match and _REMOVAL_WORDS.search(text):
        match = _ARG_OF.search(text)
    if not match:
        return None
    target = _resolve(loc, match.group("func"))
    symbol = loc.find(target) if target else None
    if symbol is None or match.group("param") not in parameters(symbol):  # "remove the unused argument of f"
        return None
    return RemoveParameter(op="remove_parameter", target=symbol.qualname, name=match.group("param"))


def _move(text: str, loc: Localised) -> Operation | None:
    match = _MOVE.search(text)
    if not match or "." not in match.group("mod"):
        return None
    target = _resolve(loc, match.group("sym"))
    if target is None:
        return None
    module = match.group("mod").rstrip(".")
    name = target.rsplit(".", 1)[-1]
    if module.endswith("." + name) and module.rsplit(".", 1)[0] in loc.modules:
        module = module.rsplit(".", 1)[0]  # "move a.b.f to a.c.f": the new place, written whole
    return MoveSymbol(op="move_symbol", target=target, to_module=module)


def _add(text: str, loc: Localised) -> Operation | None:
    match = _ACCEPT.search(text)
    if not match:
        return None
    target = _resolve(loc, match.group("func"))
    default = (match.group("default") or "None").strip().strip("`")
    kind = "keyword_only" if match.group("kw") else "positional_or_keyword"
    annotation = "bool" if default in ("True", "False") else None
    if not target:
        return None
    return AddParameter(
        op="add_parameter", target=target, name=match.group("name"), default=default, kind=kind, annotation=annotation
    )


def _listed(rule: Callable[[str, Localised], Operation | None]) -> Callable[[str, Localised], list[Operation]]:
    def listed(text: str, loc: Localised) -> list[Operation]:
        operation = rule(text, loc)
        return [] if operation is None else [operation]

    return listed


_RULES: tuple[Callable[[str, Localised], list[Operation]], ...] = (
    _renames, _listed(_rename), _listed(_remove), _listed(_move), _listed(_add))
"""First match wins: a list of renames, then the single plainly stated refactors."""


def issue_spec(issue: str, title: str, operations: list[Operation]) -> Spec:
    """The spec read from an issue: its title (at most 200 characters), the issue as description."""
    return Spec(title=title[:200], description=issue.strip()[:20_000], operations=operations)


def rule_spec(issue: str, loc: Localised, title: str) -> Spec | None:
    """A spec for an issue that plainly asks for one refactor (or a list of renames), or None to
    let the model read it."""
    text = " ".join(issue.split())
    for rule in _RULES:
        try:
            operations = rule(text, loc)
        except ValidationError:  # a name the spec contract refuses: leave it to the model
            continue
        if operations:
            return issue_spec(issue, title, operations)
    return None
