"""Misspelt names: an issue reporting a typo becomes the rename the repository's own spelling implies,
a question when several names look misspelt, and nothing at all without a typo in the wording."""

from __future__ import annotations

from diffusellm.pipeline.locate.context import Localised, Symbol, name_words, words_of
from diffusellm.pipeline.normalise.cues import read_issue
from diffusellm.pipeline.normalise.issue import NeedsClarification, normalise_issue
from diffusellm.pipeline.normalise.typos import edit_distance, misspellings, typo_candidates
from diffusellm.pipeline.spec import RenameSymbol
from diffusellm.pipeline.understand.style.profile import StyleProfile
from tests.fakes.scripted_llm import ScriptedLLM

CODE = (
    Symbol("mailbox.inbox.recieve_letters", "function", "mailbox/inbox.py", 1, 9, "(box: str) -> list[str]"),
    Symbol("mailbox.inbox.fill_tray", "function", "mailbox/inbox.py", 10, 20, "(tray: str) -> None"),
    Symbol("mailbox.outbox.send_letters", "function", "mailbox/outbox.py", 1, 9, "(box: str) -> None"),
    Symbol("mailbox.outbox.MailSorter", "class", "mailbox/outbox.py", 10, 40, ""),
)
TESTS = (
    Symbol("tests.test_inbox.test_receive_and_send", "function", "tests/test_inbox.py", 1, 5, "()"),
    Symbol("tests.test_inbox.test_file_count", "function", "tests/test_inbox.py", 6, 9, "()"),
    Symbol("tests.test_inbox.test_file_names", "function", "tests/test_inbox.py", 10, 14, "()"),
)


def _loc(code: tuple[Symbol, ...] = CODE) -> Localised:
    return Localised(symbols=code, modules=("mailbox.inbox", "mailbox.outbox"), test_files=(),
                     context="", words=name_words(code + TESTS))


def _read(issue: str, loc: Localised | None = None) -> object:
    return normalise_issue(issue, llm=ScriptedLLM(), loc=loc or _loc(), profile=StyleProfile())


def test_words_and_distances() -> None:
    assert words_of("recieve_letters") == ["recieve", "letters"]
    assert words_of("MailSorter") == ["mail", "sorter"]
    assert edit_distance("recieve", "receive") == 1  # two neighbours swapped
    assert edit_distance("fill", "file") == 1
    assert edit_distance("letters", "sorter", limit=3) == 3


def test_swapped_letters_attested_elsewhere_are_a_misspelling_and_real_word_pairs_rank_below() -> None:
    found = misspellings(CODE, name_words(CODE + TESTS))
    assert [(m.symbol.name, m.new_name, m.swapped) for m in found][:1] == [
        ("recieve_letters", "receive_letters", True)]
    # fill/file differ by one letter but are both words: found, yet never preferred over a swap
    assert all(not m.swapped for m in found[1:])


def test_a_reported_typo_that_names_nothing_becomes_the_rename() -> None:
    spec = _read("There is a spelling mistake in one of the function names.")
    assert not isinstance(spec, NeedsClarification)
    assert spec.operations == [RenameSymbol(op="rename_symbol", target="mailbox.inbox.recieve_letters",
                                            new_name="receive_letters")]


def test_without_a_typo_in_the_wording_no_name_is_respelt() -> None:
    assert typo_candidates(read_issue("recieve_letters drops the last letter of the box."), _loc()) == []
    spec = _read("recieve_letters drops the last letter of the box.")
    if not isinstance(spec, NeedsClarification):
        assert all(not isinstance(op, RenameSymbol) for op in spec.operations)


def test_a_typo_in_prose_is_not_read_as_a_misspelt_name() -> None:
    for issue in ("Typo in the docstring of the inbox module.", "There is a typo in the README.",
                  "The error message has a spelling mistake"):
        assert typo_candidates(read_issue(issue), _loc()) == [], issue


def test_a_typo_report_with_only_real_word_pairs_is_not_guessed() -> None:
    code = tuple(s for s in CODE if s.name != "recieve_letters")
    assert typo_candidates(read_issue("Typo in a function name."), _loc(code)) == []


def test_several_swapped_names_become_a_question_naming_them() -> None:
    code = (*CODE, Symbol("mailbox.outbox.sned_letters", "function", "mailbox/outbox.py", 41, 50, "()"))
    result = _read("Fix the misspelled function name please", _loc(code))
    assert isinstance(result, NeedsClarification)
    assert "recieve_letters" in result.question and "sned_letters" in result.question


def test_a_named_misspelt_function_is_respelt_even_by_a_missing_letter() -> None:
    code = (*CODE, Symbol("mailbox.inbox.count_occurences", "function", "mailbox/inbox.py", 21, 30, "()"))
    loc = Localised(symbols=code, modules=(), test_files=(), context="", words=name_words(
        (*code, *TESTS, Symbol("tests.test_inbox.test_occurrences", "function", "t.py", 1, 2, "()"))))
    spec = _read("Typo: `count_occurences` is spelt wrong.", loc)
    assert not isinstance(spec, NeedsClarification)
    assert spec.operations == [RenameSymbol(op="rename_symbol", target="mailbox.inbox.count_occurences",
                                            new_name="count_occurrences")]
