"""Phase 4, move_symbol support: one LibCST pass applying planned import and expression edits."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from diffusellm.pipeline.operations.move.imports import remove_item


@dataclass
class Edits:
    """Edits keyed by the identity of nodes of the tree they were planned on."""

    remove: set[int] = field(default_factory=lambda: set())
    replace_alias: dict[int, cst.ImportAlias] = field(default_factory=lambda: {})
    inline: dict[int, cst.ImportFrom] = field(default_factory=lambda: {})
    after: dict[int, cst.SimpleStatementLine] = field(default_factory=lambda: {})
    before: dict[int, cst.SimpleStatementLine] = field(default_factory=lambda: {})
    exprs: dict[int, cst.BaseExpression] = field(default_factory=lambda: {})

    def __bool__(self) -> bool:
        return bool(self.remove or self.replace_alias or self.inline or self.after or self.before
                    or self.exprs)


class _Editor(cst.CSTTransformer):
    def __init__(self, edits: Edits) -> None:
        super().__init__()
        self.edits = edits
        self.removed: set[int] = set()

    def leave_Module(self, original_node: cst.Module,  # noqa: N802
                     updated_node: cst.Module) -> cst.Module:
        """Give a removed line's blank lines to the next statement (import sections stay apart)."""
        survivors = iter(updated_node.body)
        body: list[cst.BaseStatement] = []
        blanks = 0
        for stmt in original_node.body:
            if id(stmt) in self.removed:
                blanks = max(blanks, _blank_count(stmt)) if body else 0
                continue
            new = next(survivors)
            if blanks > _blank_count(new):
                new = new.with_changes(leading_lines=[
                    *[cst.EmptyLine()] * (blanks - _blank_count(new)), *new.leading_lines])
            if not body and blanks == 0 and original_node.body[0] is not stmt:
                new = new.with_changes(leading_lines=new.leading_lines[_blank_count(new):])
            body.append(new)
            blanks = 0
        return updated_node.with_changes(body=[*body, *survivors])

    def _aliases(self, original: cst.Import | cst.ImportFrom,
                 updated: cst.Import | cst.ImportFrom) -> list[cst.ImportAlias]:
        assert not isinstance(original.names, cst.ImportStar)
        assert not isinstance(updated.names, cst.ImportStar)
        names = list(updated.names)
        for index in range(len(names) - 1, -1, -1):
            key = id(original.names[index])
            if key in self.edits.replace_alias:
                new = self.edits.replace_alias[key]
                names[index] = new.with_changes(comma=names[index].comma)
            elif key in self.edits.remove:
                names = remove_item(names, index)
        return names

    def leave_Import(self, original_node: cst.Import, updated_node: cst.Import  # noqa: N802
                     ) -> cst.Import | cst.RemovalSentinel:
        names = self._aliases(original_node, updated_node)
        return updated_node.with_changes(names=names) if names else cst.RemovalSentinel.REMOVE

    def leave_ImportFrom(self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom  # noqa: N802
                         ) -> cst.ImportFrom | cst.RemovalSentinel:
        if isinstance(original_node.names, cst.ImportStar):
            return updated_node
        if id(original_node) in self.edits.inline:
            return self.edits.inline[id(original_node)]
        names = self._aliases(original_node, updated_node)
        if not names:
            return cst.RemovalSentinel.REMOVE
        if names[-1].comma != cst.MaybeSentinel.DEFAULT and updated_node.lpar is None:
            names[-1] = names[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated_node.with_changes(names=names)

    def leave_SimpleStatementLine(  # noqa: N802
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement] | cst.RemovalSentinel:
        if not updated_node.body:
            self.removed.add(id(original_node))
            return cst.RemovalSentinel.REMOVE
        body = list(updated_node.body)
        if len(body) < len(original_node.body):
            body[-1] = body[-1].with_changes(semicolon=cst.MaybeSentinel.DEFAULT)
            updated_node = updated_node.with_changes(body=body)
        extra = [self.edits.after[id(s)] for s in original_node.body if id(s) in self.edits.after]
        first = [self.edits.before[id(s)] for s in original_node.body if id(s) in self.edits.before]
        if first:  # the blank lines and comments above the line stay above the block
            first[0] = first[0].with_changes(leading_lines=updated_node.leading_lines)
            updated_node = updated_node.with_changes(leading_lines=[])
        return cst.FlattenSentinel([*first, updated_node, *extra]) if first or extra else updated_node

    def leave_If(self, original_node: cst.If, updated_node: cst.If  # noqa: N802
                 ) -> cst.BaseStatement | cst.RemovalSentinel:
        emptied = _only_pass(updated_node.body) and not _only_pass(original_node.body)
        if emptied and updated_node.orelse is None:
            self.removed.add(id(original_node))
            return cst.RemovalSentinel.REMOVE
        return updated_node

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute  # noqa: N802
                        ) -> cst.BaseExpression:
        return self.edits.exprs.get(id(original_node), updated_node)

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:  # noqa: N802
        return self.edits.exprs.get(id(original_node), updated_node)

    def leave_SimpleString(self, original_node: cst.SimpleString,  # noqa: N802
                           updated_node: cst.SimpleString) -> cst.BaseExpression:
        return self.edits.exprs.get(id(original_node), updated_node)


def _blank_count(stmt: cst.BaseStatement) -> int:
    lines = list(getattr(stmt, "leading_lines", ()))
    return next((i for i, line in enumerate(lines) if line.comment is not None), len(lines))


def _only_pass(body: cst.BaseSuite) -> bool:
    statements = list(body.body)
    return all(isinstance(s, cst.SimpleStatementLine)
               and all(isinstance(x, cst.Pass) for x in s.body) for s in statements)


def apply_edits(tree: cst.Module, edits: Edits) -> cst.Module:
    """Apply `edits` (planned on `tree` itself) and return the edited module."""
    if not edits:
        return tree
    return tree.visit(_Editor(edits))
