"""Generative operations: whole-function replacement and insertion through LibCST, refusals on clashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffusellm.errors import OperationError, SpecError
from diffusellm.pipeline.operations.apply import apply_operations
from diffusellm.pipeline.operations.generative.functions import GenerativeContext
from diffusellm.pipeline.spec import AddFunction, AddTest, EditFunction, load_spec_text
from diffusellm.pipeline.understand.trie import SignatureTrie
from tests.conftest import make_repo

HELPERS = '''\
"""Text helpers."""

from __future__ import annotations


def shout(text: str) -> str:
    """Upper-case the text."""
    return text.upper()


class Greeter:
    """Says hello."""

    @staticmethod
    def greet(name: str) -> str:
        """A greeting."""
        return "hello " + name


if __name__ == "__main__":
    print(shout("hi"))
'''


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {
            "pkg/__init__.py": "",
            "pkg/helpers.py": HELPERS,
            "tests/test_helpers.py": "from pkg.helpers import shout\n\n\ndef test_shout() -> None:\n    assert shout('a') == 'A'\n",
        },
    )


def _edit(**fields: object) -> EditFunction:
    return EditFunction.model_validate({"op": "edit_function", **fields})


def test_edit_function_replaces_the_whole_definition_and_keeps_the_rest(repo: Path) -> None:
    source = 'def shout(text: str) -> str:\n    """Upper-case the text, loudly."""\n    return text.upper() + "!"\n'
    changes = apply_operations(repo, [_edit(target="pkg.helpers.shout", source=source)])
    text = changes["pkg/helpers.py"]
    assert text is not None
    assert 'return text.upper() + "!"' in text and "loudly" in text
    assert text.count("def shout") == 1
    # everything else byte for byte: the class, the main guard and the blank lines around shout
    assert text.replace(source, "") == HELPERS.replace(
        'def shout(text: str) -> str:\n    """Upper-case the text."""\n    return text.upper()\n', ""
    )


def test_edit_method_body_keeps_decorator_docstring_and_class_indent(repo: Path) -> None:
    changes = apply_operations(repo, [_edit(target="pkg.helpers.Greeter.greet", body='return f"hello {name}!"\n')])
    text = changes["pkg/helpers.py"]
    assert text is not None
    assert (
        '    @staticmethod\n    def greet(name: str) -> str:\n        """A greeting."""\n        return f"hello {name}!"\n'
        in text
    )


def test_edit_function_refuses_a_signature_change_unless_allowed(repo: Path) -> None:
    source = "def shout(text: str, mark: str = '!') -> str:\n    return text.upper() + mark\n"
    with pytest.raises(OperationError, match=r"changes the signature of pkg\.helpers\.shout"):
        apply_operations(repo, [_edit(target="pkg.helpers.shout", source=source)])
    changes = apply_operations(repo, [_edit(target="pkg.helpers.shout", source=source, signature_may_change=True)])
    assert "mark: str = '!'" in (changes["pkg/helpers.py"] or "")


def test_edit_function_merges_the_imports_its_source_brings(repo: Path) -> None:
    source = "import textwrap\n\n\ndef shout(text: str) -> str:\n    return textwrap.dedent(text).upper()\n"
    text = apply_operations(repo, [_edit(target="pkg.helpers.shout", source=source)])["pkg/helpers.py"]
    assert text is not None
    assert "from __future__ import annotations\nimport textwrap\n" in text


def test_edit_function_refuses_classes_and_missing_targets(repo: Path) -> None:
    with pytest.raises(OperationError, match="is a class"):
        apply_operations(repo, [_edit(target="pkg.helpers.Greeter", body="pass")])
    with pytest.raises(OperationError, match="not found"):
        apply_operations(repo, [_edit(target="pkg.helpers.whisper", body="pass")])


def test_add_function_appends_before_the_main_guard(repo: Path) -> None:
    op = AddFunction.model_validate(
        {
            "op": "add_function",
            "target": "pkg.helpers.whisper",
            "source": "def whisper(text: str) -> str:\n    return text.lower()\n",
        }
    )
    text = apply_operations(repo, [op])["pkg/helpers.py"]
    assert text is not None
    assert (
        '        return "hello " + name\n\n\ndef whisper(text: str) -> str:\n    return text.lower()\n\n\nif __name__'
        in text
    )


def test_add_method_goes_into_the_class(repo: Path) -> None:
    op = AddFunction.model_validate(
        {
            "op": "add_function",
            "target": "pkg.helpers.Greeter.wave",
            "source": "def wave(self) -> str:\n    return 'o/'\n",
        }
    )
    text = apply_operations(repo, [op])["pkg/helpers.py"]
    assert text is not None
    assert "        return \"hello \" + name\n\n    def wave(self) -> str:\n        return 'o/'\n" in text


def test_add_function_refuses_an_existing_name(repo: Path) -> None:
    op = AddFunction.model_validate(
        {"op": "add_function", "target": "pkg.helpers.shout", "source": "def shout(x: int) -> int:\n    return x\n"}
    )
    with pytest.raises(OperationError, match="already exists"):
        apply_operations(repo, [op])


def _trie() -> SignatureTrie:
    return SignatureTrie.from_symbols([("pkg.helpers.shout", "shout", "(text: str) -> str")])


def test_add_function_refuses_a_copy_of_an_existing_function_under_another_name(repo: Path) -> None:
    op = AddFunction.model_validate(
        {
            "op": "add_function",
            "target": "pkg.helpers.yell",
            "source": "def yell(words: str) -> str:\n    '''Loud.'''\n    return words.upper()\n",
        }
    )
    with pytest.raises(
        OperationError, match=r"duplicate pkg\.helpers\.shout: same signature and the same body"
    ) as info:
        apply_operations(repo, [op], context=GenerativeContext(trie=_trie()))
    assert "reuse pkg.helpers.shout" in info.value.hint


def test_add_function_refuses_same_name_words_and_signature_but_allows_on_request(repo: Path) -> None:
    source = "def shout_(text: str) -> str:\n    return text.upper() + '!'\n"
    op = {"op": "add_function", "target": "pkg.helpers.shout_", "source": source}
    with pytest.raises(OperationError, match="same signature and the same name words"):
        apply_operations(repo, [AddFunction.model_validate(op)], context=GenerativeContext(trie=_trie()))
    allowed = AddFunction.model_validate({**op, "allow_similar": True})
    assert apply_operations(repo, [allowed], context=GenerativeContext(trie=_trie()))


def test_add_function_warns_about_a_near_identical_signature(repo: Path) -> None:
    context = GenerativeContext(trie=_trie())
    op = AddFunction.model_validate(
        {
            "op": "add_function",
            "target": "pkg.helpers.shout_twice",
            "source": "def shout_twice(text: str, times: int) -> str:\n    return text.upper() * times\n",
        }
    )
    assert apply_operations(repo, [op], context=context)
    assert context.warnings and "pkg.helpers.shout" in context.warnings[0]


def test_add_test_creates_the_file_with_the_import_it_needs(repo: Path) -> None:
    op = AddTest.model_validate(
        {
            "op": "add_test",
            "target": "pkg.helpers.shout",
            "path": "tests/test_loud.py",
            "source": "def test_shout_empty() -> None:\n    assert shout('') == ''\n",
        }
    )
    text = apply_operations(repo, [op])["tests/test_loud.py"]
    assert text == "from pkg.helpers import shout\n\n\ndef test_shout_empty() -> None:\n    assert shout('') == ''\n"


def test_add_test_appends_to_an_existing_file_and_refuses_a_taken_name(repo: Path) -> None:
    op = {
        "op": "add_test",
        "target": "pkg.helpers.shout",
        "path": "tests/test_helpers.py",
        "source": "def test_shout_keeps_digits() -> None:\n    assert shout('a1') == 'A1'\n",
    }
    text = apply_operations(repo, [AddTest.model_validate(op)])["tests/test_helpers.py"]
    assert text is not None
    assert text.count("from pkg.helpers import shout") == 1
    assert text.endswith("\n\n\ndef test_shout_keeps_digits() -> None:\n    assert shout('a1') == 'A1'\n")
    taken = {**op, "source": "def test_shout() -> None:\n    assert shout('') == ''\n"}
    with pytest.raises(OperationError, match="already defines test_shout"):
        apply_operations(repo, [AddTest.model_validate(taken)])


@pytest.mark.parametrize("body", [
    "    pass\n",
    "    ...\n",
    '    """Shouting works."""\n',
    '    """Shouting works."""\n    pass\n',
    "    expected = 'A'\n",
])
def test_add_test_that_asserts_nothing_is_refused(repo: Path, body: str) -> None:
    op = AddTest.model_validate({
        "op": "add_test", "target": "pkg.helpers.shout", "path": "tests/test_empty.py",
        "source": f"def test_shout_something() -> None:\n{body}",
    })
    with pytest.raises(OperationError, match="asserts nothing"):
        apply_operations(repo, [op])
    assert not (repo / "tests" / "test_empty.py").exists()


@pytest.mark.parametrize("body", [
    "    with pytest.raises(TypeError):\n        shout(1)  # type: ignore[arg-type]\n",
    "    check_shouting(shout)\n",
])
def test_add_test_may_check_through_pytest_raises_or_a_helper(repo: Path, body: str) -> None:
    op = AddTest.model_validate({
        "op": "add_test", "target": "pkg.helpers.shout", "path": "tests/test_more.py",
        "source": f"import pytest\n\n\ndef test_shout_checked() -> None:\n{body}",
    })
    assert "def test_shout_checked" in (apply_operations(repo, [op])["tests/test_more.py"] or "")


def test_a_later_operation_sees_the_function_an_earlier_one_added(repo: Path) -> None:
    spec = load_spec_text(
        """
title: Add whisper with a test
operations:
  - op: add_function
    target: pkg.helpers.whisper
    source: |
      def whisper(text: str) -> str:
          return text.lower()
  - op: add_test
    target: pkg.helpers.whisper
    path: tests/test_whisper.py
    source: |
      def test_whisper() -> None:
          assert whisper("A") == "a"
"""
    )
    changes = apply_operations(repo, spec.operations)
    assert "from pkg.helpers import whisper" in (changes["tests/test_whisper.py"] or "")


def test_spec_checks_generated_code_fields() -> None:
    with pytest.raises(SpecError, match="source defines 'other', not the target's name"):
        load_spec_text("title: t\noperations:\n  - {op: edit_function, target: a.b.f, source: 'def other(): pass'}\n")
    with pytest.raises(SpecError, match="give source, body or an instruction"):
        load_spec_text("title: t\noperations:\n  - {op: edit_function, target: a.b.f}\n")
    with pytest.raises(SpecError, match="not valid Python"):
        load_spec_text("title: t\noperations:\n  - {op: add_function, target: a.b.f, source: 'def f(:'}\n")
    with pytest.raises(SpecError, match="path"):
        load_spec_text("title: t\noperations:\n  - {op: add_test, target: a.b.f, path: src/x.py, instruction: x}\n")
    spec = load_spec_text("title: t\noperations:\n  - {op: edit_function, target: a.b.f, instruction: faster}\n")
    assert spec.needs_model


def test_without_code_a_generative_operation_is_refused_not_guessed(repo: Path) -> None:
    with pytest.raises(OperationError, match="has no code yet"):
        apply_operations(repo, [_edit(target="pkg.helpers.shout", instruction="make it louder")])
