"""Phase 4, parameter operations: insert and remove parameters and arguments, keeping the layout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeVar

import libcst as cst

Group = str  # "posonly", "slash", "param", "star", "kwonly" or "starkw"
Element = cst.Param | cst.ParamStar | cst.ParamSlash
Item = tuple[Group, Element]
_E = TypeVar("_E", bound=cst.CSTNode)
_SPACE = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


def flatten(params: cst.Parameters) -> list[Item]:
    """The parameters in source order, each tagged with its group."""
    items: list[Item] = [("posonly", p) for p in params.posonly_params]
    if isinstance(params.posonly_ind, cst.ParamSlash):
        items.append(("slash", params.posonly_ind))
    items += [("param", p) for p in params.params]
    if isinstance(params.star_arg, (cst.Param, cst.ParamStar)):
        items.append(("star", params.star_arg))
    items += [("kwonly", p) for p in params.kwonly_params]
    if isinstance(params.star_kwarg, cst.Param):
        items.append(("starkw", params.star_kwarg))
    return items


def rebuild(params: cst.Parameters, items: Sequence[Item]) -> cst.Parameters:
    """Parameters from tagged items (the inverse of `flatten`)."""
    def group(name: Group) -> list[cst.Param]:
        return [e for g, e in items if g == name and isinstance(e, cst.Param)]

    slash = [e for g, e in items if g == "slash"]
    star = [e for g, e in items if g == "star"]
    starkw = group("starkw")
    return params.with_changes(
        posonly_params=group("posonly"),
        posonly_ind=slash[0] if slash else cst.MaybeSentinel.DEFAULT,
        params=group("param"),
        star_arg=star[0] if star else cst.MaybeSentinel.DEFAULT,
        kwonly_params=group("kwonly"),
        star_kwarg=starkw[0] if starkw else None,
    )


_AFTER: dict[type[cst.CSTNode], str] = {
    cst.Param: "whitespace_after_param", cst.Arg: "whitespace_after_arg",
    cst.ParamSlash: "whitespace_after"}
Tail = tuple[cst.Comma | cst.MaybeSentinel, cst.BaseParenthesizableWhitespace]
_NONE = cst.SimpleWhitespace("")


def _tail(element: cst.CSTNode) -> Tail:
    """What follows an element: its comma and the whitespace after it."""
    comma: object = getattr(element, "comma", cst.MaybeSentinel.DEFAULT)
    field = _AFTER.get(type(element))
    after: object = getattr(element, field) if field else _NONE
    assert isinstance(after, cst.BaseParenthesizableWhitespace)
    return (comma if isinstance(comma, cst.Comma) else cst.MaybeSentinel.DEFAULT), after


def _with_tail(element: _E, tail: Tail) -> _E:
    comma, after = tail
    if isinstance(element, cst.ParamStar):
        return element.with_changes(comma=comma) if isinstance(comma, cst.Comma) else element
    field = _AFTER[type(element)]
    return element.with_changes(**{"comma": comma, field: after})


def _comment(comma: cst.Comma | cst.MaybeSentinel) -> bool:
    if not isinstance(comma, cst.Comma):
        return False
    after = comma.whitespace_after
    return isinstance(after, cst.ParenthesizedWhitespace) and after.first_line.comment is not None


def _layout(ws: cst.BaseParenthesizableWhitespace, like: cst.BaseParenthesizableWhitespace
            ) -> cst.BaseParenthesizableWhitespace:
    """`ws` (keeping its comment) ending with the indentation of `like`."""
    if isinstance(ws, cst.ParenthesizedWhitespace) and isinstance(like,
                                                                   cst.ParenthesizedWhitespace):
        return ws.with_changes(indent=like.indent, last_line=like.last_line)
    return ws


def _plain(comma: cst.Comma) -> cst.Comma:
    """A separator like `comma` with any comment after it dropped."""
    after = comma.whitespace_after
    if isinstance(after, cst.ParenthesizedWhitespace):
        after = after.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=())
    return comma.with_changes(whitespace_after=after)


def _eol_free(comma: cst.Comma | cst.MaybeSentinel) -> cst.Comma | cst.MaybeSentinel:
    """`comma` without the end-of-line comment that belonged to its (removed) element."""
    if isinstance(comma, cst.Comma) and isinstance(comma.whitespace_after,
                                                   cst.ParenthesizedWhitespace):
        first = comma.whitespace_after.first_line.with_changes(
            whitespace=cst.SimpleWhitespace(""), comment=None)
        return comma.with_changes(whitespace_after=comma.whitespace_after.with_changes(
            first_line=first))
    return comma


def separator(elements: Sequence[cst.CSTNode],
              opening: cst.BaseParenthesizableWhitespace) -> cst.Comma:
    """The comma style of a list: copied from a separating comma, or from the opening bracket."""
    for element in elements[:-1]:
        comma = _tail(element)[0]
        if isinstance(comma, cst.Comma):
            return _plain(comma)
    if isinstance(opening, cst.ParenthesizedWhitespace):
        return cst.Comma(whitespace_after=opening.with_changes(
            first_line=cst.TrailingWhitespace(), empty_lines=()))
    return _SPACE


def _closing_tail(kept: cst.CSTNode, removed: cst.CSTNode) -> Tail:
    """The tail for a new last element: the removed one's, unless the kept one has a comment."""
    comma = _tail(kept)[0]
    old_comma, old_after = _tail(removed)
    if not _comment(comma):
        return _eol_free(old_comma), old_after
    assert isinstance(comma, cst.Comma)
    closing = old_comma.whitespace_after if isinstance(old_comma, cst.Comma) else old_after
    return (comma.with_changes(whitespace_after=_layout(comma.whitespace_after, closing)),
            old_after if isinstance(old_comma, cst.Comma) else _NONE)


def drop(elements: Sequence[_E], indexes: set[int]) -> list[_E]:
    """Remove elements; when the last goes, the new last takes over how the list ended."""
    if not elements:
        return []
    last = len(elements) - 1
    kept = [e for i, e in enumerate(elements) if i not in indexes]
    if last in indexes and kept:
        kept[-1] = _with_tail(kept[-1], _closing_tail(kept[-1], elements[last]))
    return kept


def _hand_over(previous: _E, sep: cst.Comma) -> tuple[_E, Tail]:
    """`previous` stops being last: it gets a separator; returns it and the new last one's tail."""
    comma, after = _tail(previous)
    own: cst.Comma = sep
    if _comment(comma):
        assert isinstance(comma, cst.Comma)
        layout = _layout(comma.whitespace_after, sep.whitespace_after)
        own = comma.with_changes(whitespace_after=layout)
        comma = _plain(comma)
    return _with_tail(previous, (own, _NONE)), (comma, after)


def insert(items: Sequence[Item], index: int, new: Sequence[Item], sep: cst.Comma) -> list[Item]:
    """Insert tagged items at `index`, giving them and their neighbour the list's comma style."""
    placed = [(g, _with_tail(e, (sep, _NONE))) for g, e in new]
    before = list(items[:index])
    after = list(items[index:])
    if not after:
        tail: Tail = (cst.MaybeSentinel.DEFAULT, _NONE)
        if before:
            group, element = before[-1]
            element, tail = _hand_over(element, sep)
            before[-1] = (group, element)
        group, element = placed[-1]
        placed[-1] = (group, _with_tail(element, tail))
    return [*before, *placed, *after]


def remove_param(params: cst.Parameters, name: str) -> cst.Parameters:
    """Parameters without `name`; a bare `*` or `/` left with nothing to mark goes too."""
    items = flatten(params)
    gone = {i for i, (_, e) in enumerate(items)
            if isinstance(e, cst.Param) and e.name.value == name}
    groups = [g for i, (g, _) in enumerate(items) if i not in gone]
    for i, (group, element) in enumerate(items):
        if group == "star" and isinstance(element, cst.ParamStar) and "kwonly" not in groups:
            gone.add(i)
        if group == "slash" and "posonly" not in groups:
            gone.add(i)
    elements: list[Element] = drop([e for _, e in items], gone)
    kept_groups = [g for i, (g, _) in enumerate(items) if i not in gone]
    return rebuild(params, list(zip(kept_groups, elements, strict=True)))


def new_param(name: str, default: str, annotation: str | None) -> cst.Param:
    """`name: annotation = default`, or `name=default` without an annotation (PEP 8 spacing)."""
    ann = cst.Annotation(cst.parse_expression(annotation)) if annotation else None
    space = cst.SimpleWhitespace(" " if ann else "")
    return cst.Param(name=cst.Name(name), annotation=ann, default=cst.parse_expression(default),
                     equal=cst.AssignEqual(whitespace_before=space, whitespace_after=space))


def add_param(function: cst.FunctionDef, param: cst.Param,
              kind: Literal["keyword_only", "positional_or_keyword"]) -> cst.Parameters:
    """The function's parameters with `param` added as the last of its kind."""
    items = flatten(function.params)
    groups = [g for g, _ in items]
    sep = separator([e for _, e in items], function.whitespace_before_params)
    if kind == "positional_or_keyword":
        ends = [i for i, g in enumerate(groups) if g in ("star", "kwonly", "starkw")]
        return rebuild(function.params, insert(items, ends[0] if ends else len(items),
                                               [("param", param)], sep))
    index = groups.index("starkw") if "starkw" in groups else len(items)
    new: list[Item] = [("kwonly", param)]
    if "star" not in groups:
        new.insert(0, ("star", cst.ParamStar()))
    return rebuild(function.params, insert(items, index, new, sep))


def remove_arg(call: cst.Call, index: int) -> cst.Call:
    """The call without its argument at `index`."""
    args = drop(list(call.args), {index})
    return call.with_changes(args=args, **({} if args else {"whitespace_before_args": _NONE}))


def without_param(function: cst.FunctionDef, name: str) -> cst.FunctionDef:
    """The function without parameter `name`."""
    params = remove_param(function.params, name)
    empty = not flatten(params)
    return function.with_changes(params=params,
                                 **({"whitespace_before_params": _NONE} if empty else {}))
