"""Digestion, fast path internals: walk a tree-sitter tree once, tracking scopes and bindings."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from tree_sitter import Node

from diffusellm.pipeline.understand.digest.syntax import (
    MAX_SIGNATURE,
    compact,
    docstring_of,
    dotted_chain,
    end_line_of,
    first_named,
    import_bindings,
    is_constant_name,
    line_of,
    string_literal,
    text,
)

ScopeKind = Literal["module", "class", "function", "lambda", "comprehension"]
SymbolKind = Literal["module", "class", "function", "method", "constant", "variable"]
SymbolTuple = tuple[str, str, SymbolKind, int, int, str, str, str]
ImportTuple = tuple[str, str, str | None, str | None, str, str, int]
CallTuple = tuple[str, str, str | None, int]
RefTuple = tuple[str, str, int]
BaseTuple = tuple[str, str, str | None]

_BUILTINS = frozenset(dir(builtins))
_DYNAMIC_IMPORTERS = frozenset({"import_module", "__import__", "import_string"})
_COMPREHENSIONS = ("list_comprehension", "set_comprehension", "dictionary_comprehension",
                   "generator_expression")
_TARGET_GROUPS = frozenset({"pattern_list", "tuple_pattern", "list_pattern", "tuple", "list",
                            "parenthesized_expression", "list_splat_pattern", "as_pattern_target"})
_SKIPPED = frozenset({"comment", "ERROR", "future_import_statement", "nonlocal_statement",
                      "pass_statement", "integer", "float", "true", "false", "none"})


@dataclass(slots=True, eq=False)
class Scope:
    """A namespace: what each name means inside a module, class, function, lambda or comprehension.

    A binding maps to the qualname it refers to, or None for a local variable of unknown type.
    """

    kind: ScopeKind
    qualname: str
    parent: Scope | None
    bindings: dict[str, str | None] = field(default_factory=lambda: {})
    self_name: str = ""
    global_names: set[str] = field(default_factory=lambda: set())

    def bind(self, name: str, value: str | None) -> None:
        """Bind a name unless already bound (the first definition wins)."""
        self.bindings.setdefault(name, value)

    def assigned_value(self, name: str) -> str | None:
        """What an assignment to `name` in this scope binds: a qualname at module/class level."""
        return f"{self.qualname}.{name}" if self.kind in ("module", "class") else None


@dataclass(slots=True)
class Resolved:
    """Calls, references and bases with targets resolved through the file's own scopes."""

    calls: list[CallTuple]
    references: list[RefTuple]
    bases: list[BaseTuple]


_Pending = tuple[Scope, list[str] | None, int, bool, str]


class Walker:
    """Collects definitions, imports and name uses; resolves uses once every binding is known."""

    def __init__(self, module: str, is_package: bool) -> None:
        self.module = module
        self.is_package = is_package
        self.symbols: list[SymbolTuple] = []
        self.imports: list[ImportTuple] = []
        self.dynamic = False
        self._pending: list[_Pending] = []
        self._bases: list[tuple[Scope, str, str, list[str] | None]] = []
        self._classes: dict[str, Scope] = {}
        self._variables: set[str] = set()
        self._stars: list[str] = []
        self._module_scope: Scope | None = None
        self._stack: list[tuple[Node, Scope]] = []
        self._handlers: dict[str, Callable[[Node, Scope], None]] = {
            "identifier": self._identifier, "attribute": self._attribute, "call": self._call,
            "keyword_argument": self._keyword_argument, "string": self._string,
            "function_definition": self._function_plain, "class_definition": self._class_plain,
            "decorated_definition": self._decorated, "lambda": self._lambda,
            "import_statement": self._import, "import_from_statement": self._import,
            "assignment": self._assignment, "augmented_assignment": self._augmented,
            "for_statement": self._for, "for_in_clause": self._for,
            "named_expression": self._named_expression, "as_pattern": self._as_pattern,
            "global_statement": self._global,
            **{kind: self._comprehension for kind in _COMPREHENSIONS},
            **{kind: self._skip for kind in _SKIPPED},
        }

    # -- traversal ---------------------------------------------------------------------------

    def visit_children(self, root: Node, scope: Scope) -> None:
        """Walk everything under `root` in source order, without recursion (deep trees are fine)."""
        self._module_scope = scope
        self._push(root.named_children, scope)
        stack, handlers = self._stack, self._handlers
        while stack:
            node, where = stack.pop()
            handler = handlers.get(node.type)
            if handler is None:
                stack.extend((c, where) for c in reversed(node.named_children))
            else:
                handler(node, where)

    def _push(self, nodes: list[Node], scope: Scope) -> None:
        self._stack.extend((n, scope) for n in reversed(nodes))

    def _push_one(self, node: Node | None, scope: Scope) -> None:
        if node is not None:
            self._stack.append((node, scope))

    def _skip(self, node: Node, scope: Scope) -> None:
        """Nodes with no names in them, or broken regions (reported separately)."""

    # -- names --------------------------------------------------------------------------------

    def _identifier(self, node: Node, scope: Scope) -> None:
        self._pending.append((scope, [text(node)], line_of(node), False, ""))

    def _attribute(self, node: Node, scope: Scope) -> None:
        chain = dotted_chain(node)
        if chain is not None:
            self._pending.append((scope, chain, line_of(node), False, ""))
        else:
            self._push_one(node.child_by_field_name("object"), scope)

    def _call(self, node: Node, scope: Scope) -> None:
        function = node.child_by_field_name("function")
        arguments = node.child_by_field_name("arguments")
        chain = dotted_chain(function) if function is not None else None
        if chain is not None:
            self._pending.append((scope, chain, line_of(node), True, ".".join(chain)))
            if chain[-1] in _DYNAMIC_IMPORTERS:
                self._dynamic_import(chain[-1], arguments, scope, line_of(node))
        else:
            self._pending.append((scope, None, line_of(node), True, compact(text(function))))
            self._push_one(function, scope)
        self._push_one(arguments, scope)

    def _dynamic_import(self, how: str, arguments: Node | None, scope: Scope, line: int) -> None:
        """`import_module("pkg.mod")` is an import we can see; a computed name is not."""
        first = first_named(arguments)
        literal = string_literal(first)
        if not literal or literal.startswith("."):
            self.dynamic = True
            return
        module = literal.rpartition(".")[0] if how == "import_string" else literal
        self.imports.append((scope.qualname, module, None, None, "", literal, line))

    def _keyword_argument(self, node: Node, scope: Scope) -> None:
        self._push_one(node.child_by_field_name("value"), scope)

    def _string(self, node: Node, scope: Scope) -> None:
        self._push([c for c in node.named_children if c.type == "interpolation"], scope)

    def _global(self, node: Node, scope: Scope) -> None:
        scope.global_names.update(text(c) for c in node.named_children if c.type == "identifier")

    # -- bindings -----------------------------------------------------------------------------

    def _bind_assigned(self, name: str, scope: Scope) -> None:
        if name in scope.global_names and self._module_scope is not None:
            scope = self._module_scope
        scope.bind(name, scope.assigned_value(name))

    def _bind_targets(self, node: Node | None, scope: Scope) -> list[str]:
        """Bind the names an assignment target introduces; attributes/subscripts are uses."""
        if node is None:
            return []
        if node.type == "identifier":
            name = text(node)
            self._bind_assigned(name, scope)
            return [name]
        if node.type in _TARGET_GROUPS:
            return [n for c in node.named_children for n in self._bind_targets(c, scope)]
        self._push_one(node, scope)
        return []

    def _assignment(self, node: Node, scope: Scope) -> None:
        names = self._bind_targets(node.child_by_field_name("left"), scope)
        if scope.kind == "module":
            for name in names:
                if name not in self._variables:
                    self._variables.add(name)
                    kind: SymbolKind = "constant" if is_constant_name(name) else "variable"
                    self.symbols.append((f"{scope.qualname}.{name}", name, kind, line_of(node),
                                         end_line_of(node), "", "", scope.qualname))
        self._push_one(node.child_by_field_name("right"), scope)
        self._push_one(node.child_by_field_name("type"), scope)

    def _augmented(self, node: Node, scope: Scope) -> None:
        left = node.child_by_field_name("left")
        if left is not None and left.type == "identifier":
            self._identifier(left, scope)
            self._bind_assigned(text(left), scope)
        else:
            self._push_one(left, scope)
        self._push_one(node.child_by_field_name("right"), scope)

    def _for(self, node: Node, scope: Scope) -> None:
        left = node.child_by_field_name("left")
        self._push([c for c in node.named_children if c != left], scope)
        self._bind_targets(left, scope)

    def _named_expression(self, node: Node, scope: Scope) -> None:
        self._bind_targets(node.child_by_field_name("name"), scope)
        self._push_one(node.child_by_field_name("value"), scope)

    def _as_pattern(self, node: Node, scope: Scope) -> None:
        alias = node.child_by_field_name("alias")
        self._push([c for c in node.named_children if c != alias], scope)
        self._bind_targets(alias, scope)

    def _comprehension(self, node: Node, scope: Scope) -> None:
        self._push(node.named_children, Scope("comprehension", scope.qualname, scope))

    # -- definitions --------------------------------------------------------------------------

    def _decorated(self, node: Node, scope: Scope) -> None:
        decorators = [c for c in node.named_children if c.type == "decorator"]
        definition = node.child_by_field_name("definition")
        names = {compact(text(first_named(d))) for d in decorators}
        if definition is not None and definition.type == "function_definition":
            self._function(definition, scope, node, static="staticmethod" in names)
        elif definition is not None and definition.type == "class_definition":
            self._class(definition, scope, node)
        self._push(decorators, scope)

    def _function_plain(self, node: Node, scope: Scope) -> None:
        self._function(node, scope, node, static=False)

    def _class_plain(self, node: Node, scope: Scope) -> None:
        self._class(node, scope, node)

    def _function(self, node: Node, scope: Scope, start: Node, *, static: bool) -> None:
        name = text(node.child_by_field_name("name"))
        qualname = f"{scope.qualname}.{name}"
        scope.bind(name, qualname)
        params = node.child_by_field_name("parameters")
        returns = node.child_by_field_name("return_type")
        signature = compact(text(params), MAX_SIGNATURE)
        if returns is not None:
            signature += f" -> {compact(text(returns), MAX_SIGNATURE)}"
        body = node.child_by_field_name("body")
        kind: SymbolKind = "method" if scope.kind == "class" else "function"
        self.symbols.append((qualname, name, kind, line_of(start), end_line_of(node), signature,
                             docstring_of(body), scope.qualname))
        inner = Scope("function", qualname, scope)
        self._push_one(body, inner)
        self._push_one(returns, scope)
        if params is not None:
            owner = scope.qualname if kind == "method" and not static else None
            self._parameters(params, scope, inner, owner)

    def _parameters(self, params: Node, outer: Scope, inner: Scope, owner: str | None) -> None:
        """Bind parameter names in `inner`; defaults and annotations are uses in `outer`.

        The first parameter of a method (`self`, `cls`) is bound to the class itself.
        """
        for param in params.named_children:
            kind = param.type
            if kind in ("default_parameter", "typed_default_parameter"):
                named = param.child_by_field_name("name")
            else:
                named = first_named(param) if kind == "typed_parameter" else param
            if named is not None and named.type in ("list_splat_pattern",
                                                    "dictionary_splat_pattern"):
                named = first_named(named)
                owner = None
            self._push_one(param.child_by_field_name("value"), outer)
            self._push_one(param.child_by_field_name("type"), outer)
            if named is None or named.type != "identifier":
                continue
            name = text(named)
            if owner is not None:
                inner.self_name = name
            inner.bindings[name] = owner
            owner = None

    def _class(self, node: Node, scope: Scope, start: Node) -> None:
        name = text(node.child_by_field_name("name"))
        qualname = f"{scope.qualname}.{name}"
        scope.bind(name, qualname)
        supers = node.child_by_field_name("superclasses")
        body = node.child_by_field_name("body")
        self.symbols.append((qualname, name, "class", line_of(start), end_line_of(node),
                             compact(text(supers)) if supers else "", docstring_of(body),
                             scope.qualname))
        inner = Scope("class", qualname, scope)
        self._classes[qualname] = inner
        self._push_one(body, inner)
        if supers is not None:
            for base in supers.named_children:
                if base.type != "keyword_argument":
                    self._bases.append((scope, qualname, compact(text(base)), dotted_chain(base)))
            self._push(supers.named_children, scope)

    def _lambda(self, node: Node, scope: Scope) -> None:
        inner = Scope("lambda", scope.qualname, scope)
        self._push_one(node.child_by_field_name("body"), inner)
        params = node.child_by_field_name("parameters")
        if params is not None:
            self._parameters(params, scope, inner, None)

    # -- imports ------------------------------------------------------------------------------

    def _import(self, node: Node, scope: Scope) -> None:
        """`import` and `from ... import`: bind each local name, remember star sources."""
        for module, name, alias, local, target in import_bindings(
                node, self.module, self.is_package):
            if local:
                scope.bind(local, target)
            if name == "*":
                self._stars.append(module)
            self.imports.append((scope.qualname, module, name, alias, local, target,
                                 line_of(node)))

    # -- resolution ---------------------------------------------------------------------------

    def resolve(self) -> Resolved:
        """Resolve every recorded use now that all bindings of the file are known."""
        calls: list[CallTuple] = []
        references: list[RefTuple] = []
        seen: set[tuple[str, str]] = set()
        for scope, parts, line, is_call, written in self._pending:
            target = self._target(scope, parts, is_call) if parts else None
            if is_call:
                calls.append((scope.qualname, written, target, line))
            elif target is not None and (scope.qualname, target) not in seen:
                seen.add((scope.qualname, target))
                references.append((scope.qualname, target, line))
        bases = [(cls, written, self._target(scope, chain, True) if chain else None)
                 for scope, cls, written, chain in self._bases]
        return Resolved(calls, references, bases)

    def _target(self, scope: Scope, parts: list[str], is_call: bool) -> str | None:
        """The qualname `a.b.c` means in `scope`, or None (local, builtin, unknown)."""
        name = parts[0]
        current: Scope | None = scope
        innermost = True
        while current is not None:
            if current.kind == "class" and not innermost:
                current = current.parent
                continue
            innermost = False
            if name in current.global_names:
                current = self._module_scope
                continue
            if name in current.bindings:
                value = current.bindings[name]
                if value is not None and current.self_name == name:
                    return self._self_target(value, parts, is_call)
                return value if value is None else ".".join([value, *parts[1:]])
            current = current.parent
        if name not in _BUILTINS and len(self._stars) == 1:
            return ".".join([self._stars[0], *parts])
        return None

    def _self_target(self, cls: str, parts: list[str], is_call: bool) -> str | None:
        """`self.method` means the class's method; deeper chains are instance state we can't see."""
        if len(parts) != 2:
            return None
        owner = self._classes.get(cls)
        if is_call or (owner is not None and parts[1] in owner.bindings):
            return f"{cls}.{parts[1]}"
        return None

