"""Phase 6 parsing: turn ruff, pyright and pytest output into findings, and find the new ones."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from diffusellm.pipeline.validate.outputs import OutputRefusedError, read_output
from diffusellm.pipeline.validate.sandbox import SandboxResult

PYTEST_EXIT = {
    2: "interrupted",
    3: "internal error",
    4: "usage error",
}


@dataclass(frozen=True)
class Finding:
    """One failure: `key` compares across base and head (no line numbers); `line` is for people."""

    key: tuple[str, ...]
    line: str
    path: str = ""
    """For linter findings: the file and row, to key them by the enclosing symbol (`symbols`)."""
    row: int = 0


def _unrename(key: tuple[str, ...], renames: Mapping[str, str]) -> tuple[str, ...]:
    """The key as the base commit would spell it: each renamed identifier put back to its old name."""
    if not renames:
        return key
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in renames) + r")\b")
    return tuple(pattern.sub(lambda m: renames[m.group(1)], part) for part in key)


def new_findings(
    base: Sequence[Finding],
    head: Sequence[Finding],
    renames: Mapping[str, str] | None = None,
    moved: Callable[[tuple[str, ...]], Sequence[tuple[str, ...]]] | None = None,
) -> list[str]:
    """Findings on head beyond those with the same key on base (a count, as keys may repeat).

    `renames` maps new identifier → old, so a failure that exists on base and only changed its
    spelling because the change renamed a symbol is not counted as new. `moved` gives the keys
    the base may know a finding by when the change moved code: the first is matched one for one;
    the others are where the moved code came from, and a finding of the same tool and code the
    base has there at all (an import line the move copied, say, whose message names fewer
    names) is carried, not new.
    """
    allowed = Counter(f.key for f in base)
    had = {f.key[:3] for f in base}
    new: list[str] = []
    for finding in head:
        key = _unrename(finding.key, renames or {})
        first, *carried = moved(key) if moved else [key]
        if allowed[first] > 0:
            allowed[first] -= 1
        elif not any(k[:3] in had for k in carried):
            new.append(finding.line)
    return new


def tool_failure(tool: str, result: SandboxResult, root: Path | None = None) -> Finding:
    """A finding for a tool run that ended without a usable report (crash, kill, bad config)."""
    if result.timed_out:
        return Finding(("run", tool, "killed"), f"{tool} was killed: {result.killed_reason}")
    detail = _problem_line(result.stderr) or _problem_line(result.stdout) or "no output"
    if root is not None:
        detail = _scrub(root, detail)
    exit_meaning = PYTEST_EXIT.get(result.returncode, "") if tool == "pytest" else ""
    reason = result.killed_reason or exit_meaning
    why = f"exit code {result.returncode}" + (f", {reason}" if reason else "")
    return Finding(("run", tool, str(result.returncode)), f"{tool} failed ({why}): {detail}")


def missing_tool(tool: str, result: SandboxResult) -> Finding | None:
    """A tool-failure finding when the interpreter lacks `tool` or could not be started at all."""
    absent = f"No module named {tool}" in result.stderr or f"No module named '{tool}'" in result.stderr
    if result.returncode == 127 or (result.returncode == 1 and absent):
        where = result.argv[0] if result.argv else "the checks' interpreter"
        why = _problem_line(result.stderr) or f"exit code {result.returncode}"
        return Finding(("run", tool, "missing"), f"{tool} is not available to {where}: {why}")
    return None


def tests_run(root: Path, xml_path: Path) -> int:
    """How many tests a junit report says ran (collection errors and skipped tests are not runs).

    Read only through `read_output`, like `parse_junit`: the sandbox may have left a FIFO or a link."""
    try:
        tree = ET.ElementTree(ET.fromstring(read_output(root, xml_path.relative_to(root).as_posix())))
    except (OutputRefusedError, ET.ParseError):
        return 0
    count = 0
    for case in tree.iter("testcase"):
        if case.get("classname") and not any(c.tag == "skipped" for c in case):
            count += 1
    return count


def is_tool_failure(finding: Finding) -> bool:
    """True for a finding about the tool itself not running, rather than about the code."""
    return finding.key[0] == "run"


def parse_ruff(root: Path, result: SandboxResult) -> list[Finding]:
    """Ruff's JSON diagnostics, keyed by (path, code, message)."""
    items = _json(result.stdout)
    if result.returncode not in (0, 1) or not isinstance(items, list):
        return [tool_failure("ruff", result, root)]
    found: list[Finding] = []
    for raw in cast(list[Any], items):
        item = cast(dict[str, Any], raw)
        path = _relative(root, str(item.get("filename", "")))
        code = str(item.get("code") or "syntax-error")
        message = _scrub(root, str(item.get("message", "")))
        row = cast(dict[str, Any], item.get("location") or {}).get("row", 0)
        found.append(Finding(("ruff", path, code, message), f"{path}:{row}: {code} {message}", path, int(row)))
    return found


def parse_pyright(root: Path, result: SandboxResult) -> list[Finding]:
    """Pyright's errors (not warnings), keyed by (path, rule, message)."""
    report = _json(result.stdout)
    if result.returncode not in (0, 1) or not isinstance(report, dict):
        return [tool_failure("pyright", result, root)]
    diagnostics = cast(list[Any], cast(dict[str, Any], report).get("generalDiagnostics", []))
    found: list[Finding] = []
    for raw in diagnostics:
        item = cast(dict[str, Any], raw)
        if item.get("severity") != "error":
            continue
        path = _relative(root, str(item.get("file", "")))
        rule = str(item.get("rule") or "error")
        message = " ".join(_scrub(root, str(item.get("message", ""))).split())
        where = cast(dict[str, Any], item.get("range") or {})
        start = cast(dict[str, Any], where.get("start") or {})
        line = int(start.get("line", -1)) + 1
        found.append(Finding(("pyright", path, rule, message), f"{path}:{line}: {rule} {message}", path, line))
    return found


def parse_junit(root: Path, xml_path: Path) -> tuple[list[Finding], set[str]]:
    """Failing test ids (failures, errors, collection errors) and every test id in a junit file.

    The file was written in the sandbox: read only through `read_output`; a report that is there
    but refused (a FIFO, a link, too big) is a finding of its own, never a silent pass.
    """
    rel = xml_path.relative_to(root).as_posix()
    try:
        tree = ET.ElementTree(ET.fromstring(read_output(root, rel)))
    except OutputRefusedError as exc:
        if exc.reason == "not written":
            return [], set()
        return [Finding(("pytest", "report"), f"pytest report refused: {exc}")], set()
    except ET.ParseError:
        return [], set()
    failing: dict[str, Finding] = {}
    seen: set[str] = set()
    for case in tree.iter("testcase"):
        node_id = _node_id(case.attrib)
        seen.add(node_id)
        problem = next((c for c in case if c.tag in ("failure", "error")), None)
        if problem is not None and node_id not in failing:
            message = _scrub(root, _first_line(problem.get("message") or problem.tag))
            if not case.get("classname"):
                message = f"collection error: {_scrub(root, _error_line(problem.text or ''))}"
            failing[node_id] = Finding(("pytest", node_id), f"{node_id} - {message}")
    return list(failing.values()), seen


def _node_id(attrib: dict[str, str]) -> str:
    """Rebuild pytest's node id from a junit (xunit1) testcase: file, classes, name."""
    name, classname, file = attrib.get("name", ""), attrib.get("classname", ""), attrib.get("file")
    if not file:
        return f"{classname}::{name}" if classname else name
    if not classname:
        return file
    module = file[:-3].replace("/", ".") if file.endswith(".py") else file.replace("/", ".")
    classes = classname[len(module) + 1:].split(".") if classname.startswith(module + ".") else []
    return "::".join([file, *[c for c in classes if c], name])


def _json(text: str) -> object:
    try:
        return cast(object, json.loads(text))
    except json.JSONDecodeError:
        return None


def _relative(root: Path, path: str) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return path


def _scrub(root: Path, text: str) -> str:
    """Drop the temporary copy's location so base and head messages compare equal."""
    return text.replace(f"{root}/", "").replace(str(root), ".")


def _first_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0][:300] if stripped else ""


def _error_line(text: str) -> str:
    """The last `E   ...` line of a pytest traceback (the exception), else its first line."""
    errors = [ln[1:].strip() for ln in text.splitlines() if ln.startswith("E ")]
    return errors[-1][:300] if errors else _first_line(text)


def _problem_line(text: str) -> str:
    """The last line mentioning an error (pytest, ruff), else the last line of the output."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    flagged = [ln for ln in lines if "error" in ln.lower()]
    chosen = flagged[-1] if flagged else (lines[-1] if lines else "")
    return chosen[:300]
