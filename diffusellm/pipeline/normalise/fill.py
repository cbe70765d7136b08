"""Phase 3, parameters: a ranked option becomes a spec operation with the names, module and default the
issue spells out. The model only picks among what the issue offers, or writes a name constrained to the
repository's convention when the issue gives none; what cannot be filled becomes a concrete question."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import create_model

from diffusellm.errors import SpecError
from diffusellm.models.base import ModelError, TextGenerator
from diffusellm.pipeline.locate.context import Localised, Symbol
from diffusellm.pipeline.normalise.cues import (
    IssueWords,
    annotation_for,
    described_parameters,
    mentioned_parameters,
    module_names,
    new_names,
    own_module_name,
    parameters,
    positional,
    stated_default,
)
from diffusellm.pipeline.normalise.draft import json_schema, name_pattern, named_field, parse_draft, test_path
from diffusellm.pipeline.normalise.prompts import choice_messages
from diffusellm.pipeline.normalise.rank import Option, model_preference
from diffusellm.pipeline.spec import (
    AddFunction,
    AddParameter,
    AddTest,
    EditFunction,
    MoveSymbol,
    Operation,
    RemoveParameter,
    RenameSymbol,
)
from diffusellm.pipeline.understand.style.naming import DEFAULT_NAMING
from diffusellm.pipeline.understand.style.profile import IdentifierKind, StyleProfile

NAME_TOKENS = 40
INSTRUCTION_CHARS = 2000


@dataclass(frozen=True)
class Unfilled:
    """The option needs something the issue does not say: the question to ask its author."""

    question: str


@dataclass(frozen=True)
class Filler:
    """What filling an option may use: the issue, the candidates, the style, the model."""

    words: IssueWords
    loc: Localised
    profile: StyleProfile
    llm: TextGenerator | None
    seed: int = 0

    def convention(self, kind: IdentifierKind) -> Any:
        """The profiled naming convention of `kind`."""
        return self.profile.naming.get(kind, DEFAULT_NAMING[kind])

    def pick(self, question: str, answers: list[str]) -> str:
        """The one answer, or the model's likeliest of several."""
        if len(answers) == 1:
            return answers[0]
        preference = model_preference(self.llm, self.words.text, question, answers)
        return max(answers, key=lambda a: preference[a])

    def write_name(self, question: str, kind: IdentifierKind) -> str | None:
        """A new name of `kind` written by the model, constrained to the profiled convention."""
        if self.llm is None:
            return None
        model = create_model("NewName", name=named_field(name_pattern(self.profile, kind)))
        try:
            reply = self.llm.generate_json(
                choice_messages(question, self.words.text),
                json_schema(model),
                max_new_tokens=NAME_TOKENS,
                seed=self.seed,
            )
            return str(parse_draft(model, reply).model_dump()["name"])
        except (ModelError, SpecError):
            return None

    def instruction(self) -> str:
        """The issue itself is the instruction for generated code (the spec's description repeats it)."""
        return self.words.text[:INSTRUCTION_CHARS]


def _name_kind(symbol: Symbol) -> IdentifierKind:
    return "class" if symbol.kind == "class" else "method" if symbol.kind == "method" else "function"


def _siblings(loc: Localised, symbol: Symbol) -> list[str]:
    parent = symbol.qualname.rsplit(".", 1)[0]
    return [s.name for s in loc.symbols if s.qualname.rsplit(".", 1)[0] == parent]


def _rename(option: Option, f: Filler) -> Operation | Unfilled | None:
    symbol = option.target
    kind = _name_kind(symbol)
    found = new_names(f.words, f.convention(kind), _siblings(f.loc, symbol))
    question = f"What should `{symbol.qualname}` be called?"
    new_name = f.pick(question, found) if found else f.write_name(question, kind)
    if not new_name or new_name == symbol.name:
        return Unfilled(question)
    return RenameSymbol(op="rename_symbol", target=symbol.qualname, new_name=new_name)


def _remove(option: Option, f: Filler) -> Operation | Unfilled | None:
    symbol = option.target
    existing = parameters(symbol)
    if not existing:
        return None
    named = mentioned_parameters(f.words, symbol)
    name = f.pick(f"Which parameter of `{symbol.qualname}` should be removed?", named or existing)
    return RemoveParameter(op="remove_parameter", target=symbol.qualname, name=name)


def _add(option: Option, f: Filler) -> Operation | Unfilled | None:
    symbol = option.target
    taken = [symbol.name, *parameters(symbol)]
    convention = f.convention("parameter")
    found = described_parameters(f.words, convention, taken) or new_names(f.words, convention, taken)
    question = f"What should the new parameter of `{symbol.qualname}` be called?"
    name = f.pick(question, found) if found else f.write_name(question, "parameter")
    if not name:
        return Unfilled(question)
    default = stated_default(f.words) or "None"
    return AddParameter(
        op="add_parameter",
        target=symbol.qualname,
        name=name,
        default=default,
        annotation=annotation_for(default),
        kind="positional_or_keyword" if positional(f.words) else "keyword_only",
    )


def _move(option: Option, f: Filler) -> Operation | Unfilled | None:
    symbol = option.target
    module = symbol.qualname.rsplit(".", 1)[0]
    found = module_names(f.words, module.split(".", 1)[0], module)
    question = f"Which module should `{symbol.qualname}` move to?"
    if not found:
        own = own_module_name(f.words, symbol, f.loc.modules)
        return Unfilled(question) if own is None else MoveSymbol(
            op="move_symbol", target=symbol.qualname, to_module=own)
    return MoveSymbol(op="move_symbol", target=symbol.qualname, to_module=f.pick(question, found))


def _new_function(option: Option, f: Filler) -> Operation | Unfilled | None:
    module = option.target.qualname
    taken = [s.name for s in f.loc.symbols if s.qualname.rsplit(".", 1)[0] == module]
    found = new_names(f.words, f.convention("function"), taken)
    question = f"What should the new function in `{module}` be called?"
    name = f.pick(question, found) if found else f.write_name(question, "function")
    if not name:
        return Unfilled(question)
    return AddFunction(op="add_function", target=f"{module}.{name}", instruction=f.instruction())


def fill_operation(option: Option, filler: Filler) -> Operation | Unfilled | None:
    """The spec operation for `option`, a question when the issue leaves a needed value open, or
    None when the option cannot apply (removing a parameter from a function without any)."""
    target = option.target.qualname
    if option.op == "rename_symbol":
        return _rename(option, filler)
    if option.op == "remove_parameter":
        return _remove(option, filler)
    if option.op == "add_parameter":
        return _add(option, filler)
    if option.op == "move_symbol":
        return _move(option, filler)
    if option.op == "add_function":
        return _new_function(option, filler)
    if option.op == "add_test":
        path = test_path(filler.loc, target)
        return AddTest(op="add_test", target=target, path=path, instruction=filler.instruction())
    return EditFunction(op="edit_function", target=target, instruction=filler.instruction())
