"""Reports a sandboxed check leaves behind: FIFOs, huge files and links are refused, never waited on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from diffusellm.pipeline.validate.findings import parse_junit
from diffusellm.pipeline.validate.outputs import OutputRefusedError, read_output

JUNIT = (
    '<?xml version="1.0"?><testsuites><testsuite name="pytest">'
    '<testcase classname="tests.test_a" name="test_ok" file="tests/test_a.py"/>'
    '<testcase classname="tests.test_a" name="test_bad" file="tests/test_a.py">'
    '<failure message="assert False">boom</failure></testcase>'
    "</testsuite></testsuites>"
)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    root = tmp_path / "copy"
    (root / ".out").mkdir(parents=True)
    return root


@pytest.mark.timeout(60)
def test_a_fifo_report_is_refused_without_blocking(copy: Path) -> None:
    os.mkfifo(copy / ".out" / "junit.xml")  # no writer: a plain open() would wait forever
    with pytest.raises(OutputRefusedError, match="not a regular file"):
        read_output(copy, ".out/junit.xml")
    findings, seen = parse_junit(copy, copy / ".out" / "junit.xml")
    assert [f.line for f in findings] == ["pytest report refused: .out/junit.xml: is not a regular file; not read"]
    assert seen == set()


def test_a_huge_report_is_refused_before_reading(copy: Path) -> None:
    with (copy / ".out" / "junit.xml").open("wb") as handle:
        handle.truncate(2 * 1024 * 1024)  # sparse: big by size, cheap on disk
    with pytest.raises(OutputRefusedError, match="over the 1048576-byte cap"):
        read_output(copy, ".out/junit.xml", limit=1024 * 1024)


def test_linked_reports_and_report_folders_are_refused(copy: Path, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "junit.xml").write_text(JUNIT)
    (copy / ".out" / "junit.xml").symlink_to(host / "junit.xml")
    with pytest.raises(OutputRefusedError, match="symbolic link"):
        read_output(copy, ".out/junit.xml")
    (copy / "linked").symlink_to(host)
    with pytest.raises(OutputRefusedError, match="linked is a symbolic link"):
        read_output(copy, "linked/junit.xml")
    assert parse_junit(copy, copy / "linked" / "junit.xml")[0][0].key == ("pytest", "report")


def test_a_plain_report_is_read(copy: Path) -> None:
    (copy / ".out" / "junit.xml").write_text(JUNIT)
    findings, seen = parse_junit(copy, copy / ".out" / "junit.xml")
    assert seen == {"tests/test_a.py::test_ok", "tests/test_a.py::test_bad"}
    assert [f.key for f in findings] == [("pytest", "tests/test_a.py::test_bad")]
    assert parse_junit(copy, copy / ".out" / "missing.xml") == ([], set())
