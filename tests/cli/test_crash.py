"""The CLI's last resort: an unexpected exception is one line, a saved traceback and exit 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer

from diffusellm.cli.common import guard


def _boom() -> None:
    raise RuntimeError("the index is gone\nsecond line")


@pytest.mark.parametrize("as_json", [False, True])
def test_an_unexpected_exception_exits_2_with_one_line_and_the_log_path(
    as_json: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as stopped:
        guard(as_json, _boom)
    assert stopped.value.exit_code == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith("error: unexpected RuntimeError: the index is gone (")
    found = re.search(r"the traceback is in (\S+diffusellm-crash-\S+\.log)", err)
    assert found is not None
    saved = Path(found.group(1)).read_text(encoding="utf-8")
    assert "Traceback" in saved and "_boom" in saved
    Path(found.group(1)).unlink()
    if as_json:
        assert json.loads(out)["exit_code"] == 2


def test_exits_a_command_chose_are_kept() -> None:
    def stop() -> None:
        raise typer.Exit(1)

    with pytest.raises(typer.Exit) as stopped:
        guard(False, stop)
    assert stopped.value.exit_code == 1
