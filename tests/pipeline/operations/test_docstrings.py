"""Docstrings follow signature changes: add_parameter documents, remove_parameter undocuments."""

from __future__ import annotations

from pathlib import Path

from diffusellm.pipeline.operations.parameters.change import apply_add_parameter, apply_remove_parameter
from diffusellm.pipeline.operations.parameters.docstrings import add_entry, drop_entry
from diffusellm.pipeline.project import Project
from diffusellm.pipeline.spec import AddParameter, RemoveParameter

GOOGLE = '"""Sum.\n\n    Args:\n        value: the value,\n            continued.\n\n    Returns:\n        value: kept\n    """'
NUMPY = (
    '"""Sum.\n\n    Parameters\n    ----------\n    value : int\n        The value.\n\n'
    '    Returns\n    -------\n    value : str\n    """'
)


def test_google_entry_added_after_last_and_dropped_with_continuation() -> None:
    added = add_entry(GOOGLE, "strict", "bool", "Defaults to False.")
    assert "            continued.\n        strict: Defaults to False.\n\n    Returns:" in added
    dropped = drop_entry(added, "value")
    assert "the value" not in dropped and "continued" not in dropped
    assert "value: kept" in dropped, "a Returns entry of the same name is not a parameter"


def test_numpy_entry_added_and_dropped() -> None:
    added = add_entry(NUMPY, "strict", "bool", "Defaults to False.")
    assert "    strict : bool, optional\n        Defaults to False.\n\n    Returns" in added
    dropped = drop_entry(added, "value")
    assert "The value." not in dropped and "    value : str" in dropped


def test_plain_docstring_untouched() -> None:
    plain = '"""Just a sentence."""'
    assert add_entry(plain, "strict", None, "x") == plain


def test_operations_keep_docstrings_in_step(tmp_path: Path) -> None:
    source = (
        "def f(value: int, legacy: bool = False) -> int:\n"
        '    """Double.\n\n    Args:\n        value: the value.\n        legacy: ignored.\n    """\n'
        "    return value * 2\n"
    )
    (tmp_path / "m.py").write_text(source)
    project = Project.load(tmp_path)
    apply_remove_parameter(
        project, RemoveParameter(op="remove_parameter", target="m.f", name="legacy")
    )
    apply_add_parameter(
        project,
        AddParameter(
            op="add_parameter", target="m.f", name="strict", default="True", annotation="bool"
        ),
    )
    text = project.read("m.py")
    assert "legacy" not in text
    assert "        value: the value.\n        strict: Defaults to True.\n" in text
