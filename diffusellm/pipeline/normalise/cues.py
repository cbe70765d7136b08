"""Phase 3, evidence in an issue's words: which change kinds it asks for, which code it names, which new
names, modules and defaults it spells out. Pure functions over the text; no model."""

from __future__ import annotations

import ast
import keyword
import re
from collections.abc import Iterable
from dataclasses import dataclass

from diffusellm.pipeline.locate.context import Symbol
from diffusellm.pipeline.understand.style.infer import conforms
from diffusellm.pipeline.understand.style.profile import NamingConvention

_IDENT = re.compile(r"(?<![\w.])[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_TICKED = re.compile(r"`([^`\n]{1,200})`")
_CAMEL = re.compile(r"[a-z][A-Z]|[A-Z][a-z]+[A-Z]")
_PARAM_NOUN = re.compile(r"\b(parameters?|arguments?|args?|options?|flags?|keywords?|kwargs?)\b")
_CUES: dict[str, re.Pattern[str]] = {
    "rename_symbol": re.compile(
        r"\b(renam\w*|misnam\w*|(?:better|new|clearer|different|wrong|confusing) names?|names?(?: of \S+)? "
        r"(?:is|are|was) (?:\w+ )?(?:confusing|misleading|wrong|unclear)|call(?:ed)? (?:it|this|them)"
        r"|be (?:called|named))\b"
    ),
    "remove_parameter": re.compile(
        r"\b(remove|drop|delete|get rid of|no longer (?:need|use)d?|unused|deprecated?|obsolete)\b"
    ),
    "add_parameter": re.compile(
        r"\b(accepts?|takes?|support|add|needs?|new|should have|allow|"
        r"pass(?:ing)? (?:\S+ ){1,3}as (?:a |an )?(?:keyword|argument|parameter|option))\b"
    ),
    "move_symbol": re.compile(
        r"\b(move[ds]?|belongs? (?:in|to)|live in|relocate|split (?:it )?out|(?:own|new|separate) module)\b"
    ),
    "add_test": re.compile(
        r"\b(?:add|adds|adding|write|writing|missing|no|more|new|needs?|lacks?|without|extra)\b(?:\W+\w+){0,3}?"
        r"\W+(?:unit )?tests?\b|\btests? (?:for|covering|that|of)\b|\b(?:test )?coverage\b|\buntested\b"
    ),
    "edit_function": re.compile(
        r"\b(bug|crash\w*|wrong|errors?|fails?|broken|should|instead|fix|returns?|raises?|ignores?|incorrect)\b"
    ),
    "add_function": re.compile(r"\b(?:new|add|write) (?:a |an )?(?:helper|function)\b"),
}
_FAILING_TESTS = re.compile(r"\btests? (?:fail|break|broke|error)|\bfailing tests?\b")
_DEFAULT = re.compile(
    r"\(default(?: value)?:? (?P<paren>[^)]{1,60})\)"
    r"|\bdefault(?:s| value)?(?: (?:is|of|to|should be))?[:=]? "
    r"(?P<plain>`[^`]{1,60}`|\"[^\"]{0,58}\"|'[^']{0,58}'|[\w.+-]{1,60})"
)
_PARAM_BEFORE_NOUN = re.compile(
    r"`?(?P<name>[A-Za-z_][A-Za-z0-9_]*)`? (?:as (?:a |an )?)?(?:(?:keyword[- ]only|boolean|optional) )?"
    r"(?:keyword |kw )?(?:argument|parameter|option|flag|kwarg)s?\b"
)
_PARAM_AFTER_NOUN = re.compile(
    r"\b(?:argument|parameter|option|flag|kwarg)s? (?:called |named )?`(?P<name>[A-Za-z_][A-Za-z0-9_]*)`"
)
NOT_NAMES = frozenset({  # English words that stand where a name could, never a name themselves
    "a", "an", "the", "new", "this", "that", "these", "those", "its", "their", "his", "her", "our",
    "your", "my", "same", "extra", "additional", "another", "other", "more", "some", "any", "each",
    "every", "no", "optional", "keyword", "boolean", "bool", "positional", "required", "useful",
    "default", "only", "one", "two", "as", "of", "for", "to", "in", "on", "with", "which", "what",
    "such", "constructor", "function", "method", "class", "command", "line", "cli", "config",
    "something", "it", "them", "be",
})
_OWN_MODULE = re.compile(r"\b(?:its|their) own (?:module|file)\b|\bseparate (?:module|file)\b")
_POSITIONAL = re.compile(r"\bpositional\b|\bkeyword[- ]or[- ]positional\b")


@dataclass(frozen=True)
class IssueWords:
    """What an issue spells out, ready for matching against the repository's names."""

    text: str
    lower: str
    identifiers: frozenset[str]
    """Every identifier-looking word and dotted name, as written."""
    code: frozenset[str]
    """The ones written as code: in backticks, with `_`, camelCase, dotted, or followed by `(`, and
    the parts of dotted ones."""
    written: frozenset[str]
    """The ones written as code as they stand (a dotted name's parts are not new names)."""


def read_issue(text: str) -> IssueWords:
    """The identifiers of an issue, and which of them are written as code."""
    flat = " ".join(text.split())
    identifiers = set(_IDENT.findall(flat))
    ticked = {m.strip().rstrip("()") for m in _TICKED.findall(flat)}
    code = {i for i in ticked if _IDENT.fullmatch(i)}
    for match in _IDENT.finditer(flat):
        word = match.group(0)
        called = flat[match.end() : match.end() + 1] == "("
        if "_" in word.strip("_") or "." in word or _CAMEL.search(word) or called:
            code.add(word)
    written = frozenset(code)
    for name in written:  # `Board.add_task` also names `Board` and `add_task`
        code.update(name.split("."))
        identifiers.update(name.split("."))
    return IssueWords(flat, flat.lower(), frozenset(identifiers), frozenset(code), written)


def cued_kinds(words: IssueWords) -> set[str]:
    """The change kinds the issue's wording asks for (several may fire; none is possible)."""
    found = {kind for kind, cue in _CUES.items() if cue.search(words.lower)}
    if not _PARAM_NOUN.search(words.lower):
        found -= {"add_parameter", "remove_parameter"}
    if _FAILING_TESTS.search(words.lower):
        found.discard("add_test")
    return found


def names_symbol(words: IssueWords, symbol: Symbol) -> int:
    """How plainly the issue names `symbol`: 2 qualified (`Class.method`, a dotted path, or its own
    name and its class's or module's both), 1 by its own name, 0 not at all. One- and two-letter names
    only count when written as code."""
    parts = symbol.qualname.split(".")
    qualified = {".".join(parts[i:]) for i in range(len(parts) - 1)}
    if qualified & words.identifiers:
        return 2
    if not (symbol.name in words.code or (len(symbol.name) > 2 and symbol.name in words.identifiers)):
        return 0
    return 2 if len(parts) > 1 and parts[-2] in words.identifiers else 1


def parameters(symbol: Symbol) -> list[str]:
    """The parameter names of a function or method from its recorded signature (without self/cls)."""
    signature = symbol.signature.strip()
    if symbol.kind not in ("function", "method") or not signature.startswith("("):
        return []
    try:
        tree = ast.parse(f"def f{signature}:\n    pass\n")
    except SyntaxError:
        return []
    func = tree.body[0]
    if not isinstance(func, ast.FunctionDef):
        return []
    args = func.args
    listed = [*args.posonlyargs, *args.args, *([args.vararg] if args.vararg else []), *args.kwonlyargs]
    names = [a.arg for a in listed] + ([args.kwarg.arg] if args.kwarg else [])
    return names[1:] if symbol.kind == "method" and names and names[0] in ("self", "cls") else names


def mentioned_parameters(words: IssueWords, symbol: Symbol) -> list[str]:
    """The target's parameters the issue names."""
    return [p for p in parameters(symbol) if p in words.code or (len(p) > 2 and p in words.identifiers)]


def new_names(words: IssueWords, convention: NamingConvention, taken: Iterable[str]) -> list[str]:
    """Names written as code in the issue that fit `convention` and are not already `taken`."""
    used = set(taken)
    found = [
        n
        for n in sorted(words.written)
        if "." not in n and n not in used and not keyword.iskeyword(n) and conforms(n, convention)
    ]
    return [n for n in found if n.strip("_")]


def described_parameters(words: IssueWords, convention: NamingConvention, taken: Iterable[str]) -> list[str]:
    """Names the issue puts just before "argument", "parameter", "option", "flag" or "kwarg" ("a
    `name` argument", "pass bases as a keyword argument"), written as code or not, that fit the
    convention and are not already `taken`."""
    used = set(taken)
    found = sorted((m.start(), m.group("name")) for pattern in (_PARAM_BEFORE_NOUN, _PARAM_AFTER_NOUN)
                   for m in pattern.finditer(words.text))
    return list(dict.fromkeys(
        n for _, n in found
        if n.lower() not in NOT_NAMES and n not in used and not keyword.iskeyword(n)
        and conforms(n, convention) and n.strip("_")
    ))


def module_names(words: IssueWords, package: str, current: str) -> list[str]:
    """Dotted module paths inside `package` that the issue names, other than `current`."""
    return sorted(
        n for n in words.code if n.startswith(package + ".") and n != current and not n.startswith(current + ".")
    )


def own_module_name(words: IssueWords, symbol: Symbol, modules: Iterable[str]) -> str | None:
    """When the issue wants `symbol` in "its own module" (or a separate one) without naming it: a
    new module beside it named after it (`pkg.Blivet` → `pkg.blivet`), unless that exists."""
    if not _OWN_MODULE.search(words.lower) or symbol.kind not in ("function", "class"):
        return None
    module = symbol.qualname.rsplit(".", 1)[0]
    package = module if symbol.path.endswith("__init__.py") else module.rpartition(".")[0]
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", symbol.name).lower().strip("_")
    name = f"{package}.{snake}" if package else snake
    return None if name in set(modules) or not snake.isidentifier() or keyword.iskeyword(snake) else name


def stated_default(words: IssueWords) -> str | None:
    """The default value the issue states for a new parameter, as Python source."""
    match = _DEFAULT.search(words.text)
    if not match:
        return None
    raw = (match.group("paren") or match.group("plain") or "").strip()
    value = raw.strip("`").rstrip(".,;")
    try:  # a literal, or code written as code; "the default for the timeout" names no value
        ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        if not raw.startswith("`") or not _parses(value):
            return None
    return value or None


def _parses(value: str) -> bool:
    try:
        ast.parse(value, mode="eval")
    except SyntaxError:
        return False
    return True


def positional(words: IssueWords) -> bool:
    """The issue asks for a parameter that may be passed by position (the default is keyword-only,
    which no existing call can break)."""
    return bool(_POSITIONAL.search(words.lower))


def annotation_for(default: str) -> str | None:
    """The obvious annotation of a literal default: bool, int, float or str; None otherwise."""
    try:
        value = ast.literal_eval(default)
    except (ValueError, SyntaxError):
        return None
    for kind in (bool, int, float, str):
        if type(value) is kind:
            return kind.__name__
    return None
