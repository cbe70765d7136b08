"""What normalisation reads from an issue's words: kinds of change asked for, code named, new names,
modules and defaults spelled out."""

from __future__ import annotations

from diffusellm.pipeline.locate.context import Symbol
from diffusellm.pipeline.normalise.cues import (
    annotation_for,
    cued_kinds,
    described_parameters,
    mentioned_parameters,
    module_names,
    names_symbol,
    new_names,
    parameters,
    positional,
    read_issue,
    stated_default,
)

SAVE = Symbol(
    "board.storage.Store.save",
    "method",
    "board/storage.py",
    10,
    20,
    "(self, board: Board, *, fsync: bool = True) -> None",
)
SLUG = Symbol(
    "board.helpers.slugify", "function", "board/helpers.py", 1, 5, "(text: str, /, sep='-', *rest, **kw) -> str"
)
ERROR = Symbol("board.storage.StoreError", "class", "board/storage.py", 1, 3, "(Exception)")


def test_code_is_what_is_ticked_dotted_underscored_camel_or_called() -> None:
    words = read_issue("Rename `save` on Store.save_all; makeSlug and slugify() differ from plain words like board.")
    assert {"save", "Store.save_all", "Store", "save_all", "makeSlug", "slugify"} <= words.code
    assert "board" not in words.code and "board" in words.identifiers
    assert "Rename" not in words.code


def test_the_wording_cues_kinds_and_parameter_changes_need_a_parameter_noun() -> None:
    assert cued_kinds(read_issue("Please rename it to something shorter.")) == {"rename_symbol"}
    assert "remove_parameter" in cued_kinds(read_issue("Drop the unused `x` argument."))
    assert "remove_parameter" not in cued_kinds(read_issue("Drop the cache when the file changes."))
    assert "add_parameter" in cued_kinds(read_issue("It should accept a `timeout` option."))
    assert "move_symbol" in cued_kinds(read_issue("This belongs in board.text."))
    assert "add_test" in cued_kinds(read_issue("Add a test for empty titles."))
    assert "add_test" not in cued_kinds(read_issue("The tests fail on Windows."))
    # a test mentioned in passing is not a request for one; a missing one, or coverage, is
    for passing in ("The test suite takes ages on my laptop.", "I checked it by hand and the tests pass."):
        assert "add_test" not in cued_kinds(read_issue(passing)), passing
    for wish in ("Parsing dates has no unit tests at all.", "Please write some tests covering parse.",
                 "Branch coverage of the parser is low."):
        assert "add_test" in cued_kinds(read_issue(wish)), wish
    assert cued_kinds(read_issue("The documentation is confusing.")) == set()


def test_a_symbol_is_named_by_its_own_name_or_qualified() -> None:
    assert names_symbol(read_issue("Store.save loses data"), SAVE) == 2
    assert names_symbol(read_issue("save loses data"), SAVE) == 1
    assert names_symbol(read_issue("`save` on Store loses data"), SAVE) == 2
    assert names_symbol(read_issue("saving loses data"), SAVE) == 0
    short = Symbol("board.io.rd", "function", "board/io.py", 1, 2, "()")
    assert names_symbol(read_issue("rd is slow"), short) == 0  # too short to count unless written as code
    assert names_symbol(read_issue("`rd` is slow"), short) == 1


def test_parameters_come_from_the_signature_without_self_and_classes_have_none() -> None:
    assert parameters(SAVE) == ["board", "fsync"]
    assert parameters(SLUG) == ["text", "sep", "rest", "kw"]
    assert parameters(ERROR) == []
    assert mentioned_parameters(read_issue("the fsync flag of save is pointless"), SAVE) == ["fsync"]


def test_new_names_fit_the_convention_and_are_not_taken() -> None:
    words = read_issue("Call it `persist_board` (not `PersistBoard` nor save_all) please.")
    assert new_names(words, "snake_case", ["save_all"]) == ["persist_board"]
    assert new_names(words, "PascalCase", []) == ["PersistBoard"]


def test_described_parameters_are_the_words_before_or_after_a_parameter_noun() -> None:
    def described(text: str, taken: tuple[str, ...] = ()) -> list[str]:
        return described_parameters(read_issue(text), "snake_case", taken)

    assert described("save should get a retries argument and an optional `dry_run` flag") == [
        "retries", "dry_run"]
    assert described("an option called `follow_links` would do") == ["follow_links"]
    assert described("hand over the encoding as a keyword-only parameter") == ["encoding"]
    assert described("save needs a new parameter, and the same option elsewhere") == []
    assert described("the board argument of save", taken=("board",)) == []
    assert described("a MaxSize option") == []  # not the parameters' convention


def test_a_name_is_not_a_wish_to_rename_but_a_misleading_name_is() -> None:
    assert "rename_symbol" not in cued_kinds(read_issue("save should take a name argument"))
    assert "rename_symbol" in cued_kinds(read_issue("The name of save is misleading."))
    assert "rename_symbol" in cued_kinds(read_issue("save needs a better name"))


def test_module_names_are_dotted_paths_in_the_package() -> None:
    words = read_issue("Move it from board.helpers to board.text, like os.path does.")
    assert module_names(words, "board", "board.helpers") == ["board.text"]


def test_stated_defaults_and_their_annotations() -> None:
    assert stated_default(read_issue("a `strict` flag (default False) to demand it")) == "False"
    assert stated_default(read_issue("needs a `max_length` argument, default 60.")) == "60"
    assert stated_default(read_issue('take a `sep` parameter (default " ") between them')) == '" "'
    assert stated_default(read_issue("the default should be `None`")) == "None"
    assert stated_default(read_issue("add a verbose flag")) is None
    # words after "default" that are not a value: no default at all, never a made-up name
    assert stated_default(read_issue("keep the default for older callers")) is None
    assert stated_default(read_issue("the default of the limit is too low")) is None
    assert stated_default(read_issue("default to `os.sep` please")) == "os.sep"
    assert [annotation_for(v) for v in ("False", "60", "1.5", "' '", "None", "os.sep")] == [
        "bool",
        "int",
        "float",
        "str",
        None,
        None,
    ]
    assert positional(read_issue("a positional `strict` flag")) and not positional(read_issue("a keyword-only flag"))
