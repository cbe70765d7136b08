"""Phase 6 validation: ruff, pyright and pytest on the base and on the change, in the sandbox;
only failures the change introduced count, and the spec's acceptance tests must pass outright."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from diffusellm.errors import ConfigError
from diffusellm.pipeline.validate.env_cache import Environment
from diffusellm.pipeline.validate.environment import EnvironmentInfo
from diffusellm.pipeline.validate.findings import (
    Finding,
    is_tool_failure,
    missing_tool,
    new_findings,
    parse_junit,
    parse_pyright,
    parse_ruff,
    tests_run,
    tool_failure,
)
from diffusellm.pipeline.validate.outputs import OutputRefusedError, read_output
from diffusellm.pipeline.validate.report import CheckName, CheckResult, CheckState, ValidationReport
from diffusellm.pipeline.validate.sandbox import Sandbox, SandboxResult
from diffusellm.pipeline.validate.settings import ValidationSettings
from diffusellm.pipeline.validate.symbols import keyed_by_symbol, moved_back

OUT_DIR = ".diffusellm-validate"
"""Inside each copy: where the checks write their reports (pytest does not collect dot dirs)."""
RUFF_CONFIG_COPY = ".diffusellm-ruff.toml"
TAIL_LINES = 60
TAIL_CHARS = 6000
_COPY_IGNORE = shutil.ignore_patterns(
    ".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", OUT_DIR, RUFF_CONFIG_COPY
)


@dataclass(frozen=True)
class _Context:
    base: Path
    head: Path
    sandbox: Sandbox
    settings: ValidationSettings
    python: str
    renames: Mapping[str, str]
    test_python: str
    moves: Mapping[str, str] = field(default_factory=dict[str, str])
    """New qualname → old of each moved definition, so its old findings stay old."""
    """The interpreter pytest and pyright's import resolution use: the repository's environment's."""
    mounts: tuple[Path, ...] = ()
    env_error: str | None = None

    def run(self, argv: list[str], root: Path) -> SandboxResult:
        """Run a check in the sandbox, with the repository's environment visible when there is one."""
        if self.mounts:
            return self.sandbox.run(argv, workdir=root, env=_env(self, root), ro_paths=self.mounts)
        return self.sandbox.run(argv, workdir=root, env=_env(self, root))


@dataclass
class _Run:
    """One side's run of a check: its findings, and what ran (None when nothing had to)."""

    findings: list[Finding] = field(default_factory=list[Finding])
    result: SandboxResult | None = None
    argv: list[str] | None = None
    seen: set[str] | None = None
    tests_run: int = 0


def validate_change(
    *,
    base_dir: Path,
    head_dir: Path,
    changed_files: Sequence[str],
    tests: Sequence[str] | None,
    acceptance_tests: Sequence[str],
    sandbox: Sandbox,
    settings: ValidationSettings,
    ruff_config: Path | None = None,
    renames: Mapping[str, str] | None = None,
    environment: Environment | EnvironmentInfo | None = None,
    moves: Mapping[str, str] | None = None,
) -> ValidationReport:
    """Run every enabled check on copies of both checkouts; report what the change made worse.

    `renames` (new identifier → old) lets a base failure whose message names a renamed symbol
    match its respelled self on the change. `environment`: the repository's own (pytest runs with
    its interpreter, pyright resolves imports in it), the record of one that failed to build (the
    tests are then "not run"), or None (the checks' own interpreter, `settings.python`).
    """
    if ruff_config is not None and not ruff_config.is_file():
        raise ConfigError(
            f"ruff config {ruff_config} does not exist",
            hint="run the style profiling step again, or pass no ruff config",
        )
    python_files = [f for f in dict.fromkeys(changed_files) if f.endswith((".py", ".pyi"))]
    with tempfile.TemporaryDirectory(prefix="diffusellm-validate-") as tmp:
        ctx = _Context(
            base=_copy(base_dir, Path(tmp) / "base"),
            head=_copy(head_dir, Path(tmp) / "head"),
            sandbox=sandbox,
            settings=settings,
            python=settings.python or sys.executable,
            renames=dict(renames or {}),
            moves=dict(moves or {}),
            **_environment_fields(environment, settings.python or sys.executable),
        )
        checks = [
            _ruff_check(ctx, python_files, ruff_config),
            _pyright_check(ctx, python_files),
            _pytest_check(ctx, tests),
        ]
        if acceptance_tests:
            checks.append(_acceptance_check(ctx, acceptance_tests))
    info = environment.info if isinstance(environment, Environment) else environment
    return ValidationReport(checks=checks, required=list(dict.fromkeys(settings.require)), environment=info)


def _environment_fields(
    environment: Environment | EnvironmentInfo | None, default: str
) -> dict[str, Any]:
    if isinstance(environment, Environment):
        return {"test_python": str(environment.python), "mounts": environment.mounts}
    if environment is not None and environment.error:
        return {"test_python": default, "env_error": environment.error}
    return {"test_python": default}


def _copy(source: Path, side: Path) -> Path:
    """A writable copy named like the original (a root __init__.py makes the name matter)."""
    if not source.is_dir():
        raise ConfigError(f"checkout {source} is not a directory", hint="pass both checkouts")
    target = side / (source.resolve().name or "repo")
    shutil.copytree(source, target, symlinks=True, ignore=_COPY_IGNORE)
    (target / OUT_DIR).mkdir()
    return target


def _ruff_check(ctx: _Context, files: list[str], ruff_config: Path | None) -> CheckResult:
    if not ctx.settings.ruff:
        return _off("ruff")
    if not files:
        return _not_run("ruff", "no changed Python files")

    def argv(root: Path, present: list[str]) -> list[str]:
        return [
            ctx.python, "-m", "ruff", "check", "--output-format", "json", "--no-cache",
            "--force-exclude", *_ruff_config_args(root, ruff_config), "--", *present,
        ]

    return _static_check(ctx, "ruff", files, argv, parse_ruff)


def _ruff_config_args(root: Path, ruff_config: Path | None) -> list[str]:
    """The repository's own ruff config wins (ruff finds it); else the profiled one, if any."""
    if ruff_config is None or _has_ruff_config(root):
        return []
    if ruff_config.name == "pyproject.toml":
        target = root / OUT_DIR / "pyproject.toml"
    else:
        target = root / RUFF_CONFIG_COPY
    shutil.copyfile(ruff_config, target)
    return ["--config", target.relative_to(root).as_posix()]


def _has_ruff_config(root: Path) -> bool:
    if (root / "ruff.toml").is_file() or (root / ".ruff.toml").is_file():
        return True
    try:
        data = tomllib.loads(read_output(root, "pyproject.toml").decode("utf-8"))
    except (OutputRefusedError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    tool = data.get("tool")
    return isinstance(tool, dict) and "ruff" in tool


def _pyright_check(ctx: _Context, files: list[str]) -> CheckResult:
    if not ctx.settings.pyright:
        return _off("pyright")
    if not files:
        return _not_run("pyright", "no changed Python files")

    def argv(root: Path, present: list[str]) -> list[str]:
        return [
            ctx.python, "-m", "pyright", "--outputjson", "--pythonpath", ctx.test_python,
            *(f"./{f}" if f.startswith("-") else f for f in present),
        ]

    return _static_check(ctx, "pyright", files, argv, parse_pyright)


def _static_check(
    ctx: _Context,
    name: CheckName,
    files: list[str],
    build: Callable[[Path, list[str]], list[str]],
    parse: Callable[[Path, SandboxResult], list[Finding]],
) -> CheckResult:
    """Run a linter on the changed files present on each side and compare."""
    runs: list[_Run] = []
    for root in (ctx.base, ctx.head):
        present = _present(root, files)
        if not present:
            runs.append(_Run())
            continue
        argv = build(root, present)
        result = ctx.run(argv, root)
        missing = missing_tool(name, result)
        runs.append(_Run([missing] if missing else keyed_by_symbol(parse(root, result), root), result, argv))
    count = len(_present(ctx.head, files))
    return _compare(name, runs[0], runs[1], f"{count} changed Python file(s)", ctx.renames, ctx.moves)


def _present(root: Path, files: Sequence[str]) -> list[str]:
    return [
        f for f in files
        if not PurePosixPath(f).is_absolute() and ".." not in PurePosixPath(f).parts
        and (root / f).is_file()
    ]


def _pytest_check(ctx: _Context, tests: Sequence[str] | None) -> CheckResult:
    if not ctx.settings.pytest:
        return _off("pytest")
    if ctx.env_error:
        return _not_run("pytest", f"the repository's environment failed to build: {ctx.env_error}")
    if tests is not None and not tests:
        return _not_run("pytest", "no tests selected")
    scope = "whole suite" if tests is None else _describe(tests, "selected")
    head_targets = None if tests is None else _targets(ctx.head, tests, whole_files=False)
    if head_targets == []:
        return _not_run("pytest", "none of the selected tests exist on the change", scope)
    base_targets = None if tests is None else _targets(ctx.base, tests, whole_files=True)
    head = _pytest_run(ctx, ctx.head, head_targets, "junit.xml")
    base = _Run() if base_targets == [] else _pytest_run(ctx, ctx.base, base_targets, "junit.xml")
    if head.seen is not None and base_targets != head_targets:
        # Base ran whole files (a node id may not exist there): compare the same tests only.
        base.findings = [f for f in base.findings if is_tool_failure(f) or f.key[1] in head.seen]
    return _compare("pytest", base, head, scope, ctx.renames)


def _targets(root: Path, tests: Sequence[str], *, whole_files: bool) -> list[str]:
    """The selected tests whose file exists on this side (as files only, if asked)."""
    found: list[str] = []
    for test in tests:
        path = test.split("::", 1)[0]
        if _present_path(root, path):
            found.append(path if whole_files else test)
    return list(dict.fromkeys(found))


def _present_path(root: Path, path: str) -> bool:
    pure = PurePosixPath(path)
    return not pure.is_absolute() and ".." not in pure.parts and (root / path).exists()


def _pytest_run(ctx: _Context, root: Path, targets: list[str] | None, report: str) -> _Run:
    argv = [
        ctx.test_python, "-m", "pytest", *ctx.settings.pytest_args,
        "-p", "timeout", f"--timeout={ctx.settings.test_timeout_s}",
        "-o", "junit_family=xunit1", "--continue-on-collection-errors",
        f"--junitxml={OUT_DIR}/{report}", "--rootdir=.", *(targets or []),
    ]
    result = ctx.run(argv, root)
    junit = root / OUT_DIR / report
    findings, seen = parse_junit(root, junit)
    ran = tests_run(root, junit)
    missing = missing_tool("pytest", result)
    if missing is not None:
        return _Run([missing], result, argv, seen)
    no_report = result.returncode != 0 and not junit.is_file()
    if result.timed_out or (result.returncode not in (0, 1, 5) and not findings):
        findings.append(tool_failure("pytest", result, root))
    elif no_report:  # exit 1 without a report: something failed that pytest could not record
        findings.append(Finding(("pytest", "no report"), tool_failure("pytest", result, root).line))
    return _Run(findings, result, argv, seen, ran)


def _acceptance_check(ctx: _Context, acceptance_tests: Sequence[str]) -> CheckResult:
    """The spec's acceptance tests must pass on the change outright, not only be no worse."""
    if ctx.env_error:
        return _not_run("acceptance", f"the repository's environment failed to build: {ctx.env_error}")
    targets = list(dict.fromkeys(acceptance_tests))
    run = _pytest_run(ctx, ctx.head, targets, "junit-acceptance.xml")
    result = run.result
    if result is not None and result.returncode == 5:
        run.findings.append(Finding(("pytest", "none"), "no acceptance test was collected"))
    elif result is not None and result.returncode != 0 and not run.findings:
        run.findings.append(tool_failure("pytest", result, ctx.head))
    return CheckResult(
        name="acceptance",
        command=run.argv or [],
        state="failed" if run.findings else "passed",
        new_failures=[f.line for f in run.findings],
        head_failures=len(run.findings),
        tests_run=run.tests_run,
        scope=_describe(targets, "acceptance, must pass on the change"),
        output_tail=_tail(result),
        duration_s=result.duration_s if result else 0.0,
    )


def _compare(
    name: CheckName, base: _Run, head: _Run, scope: str, renames: Mapping[str, str],
    moves: Mapping[str, str] | None = None,
) -> CheckResult:
    new = new_findings(base.findings, head.findings, renames, lambda key: moved_back(key, moves or {}))
    state, reason = _state(name, base, head, new)
    runs = [r.result for r in (base, head) if r.result is not None]
    return CheckResult(
        name=name,
        command=head.argv or base.argv or [],
        state=state,
        new_failures=new if state == "failed" else [],
        base_failures=len(base.findings),
        head_failures=len(head.findings),
        tests_run=head.tests_run,
        scope=scope,
        skipped_reason=reason,
        output_tail=_tail(head.result),
        duration_s=sum(r.duration_s for r in runs),
    )


def _state(name: CheckName, base: _Run, head: _Run, new: list[str]) -> tuple[CheckState, str | None]:
    """passed, failed or not run (with the reason): a check that could not run never passes."""
    broken = [f.line for f in head.findings if is_tool_failure(f)]
    base_broken = [f.line for f in base.findings if is_tool_failure(f)]
    if broken and not new:
        return "not_run", f"{name} could not run on the base nor on the change: {broken[0]}"
    if base_broken and not broken and new:
        return "not_run", (
            f"{name} could not run on the base commit, so new failures cannot be told from old "
            f"ones: {base_broken[0]}"
        )
    if new:
        return "failed", None
    uncollected = [f.line for f in base.findings if "collection error" in f.line]
    if name == "pytest" and uncollected:  # those tests ran on neither side: nothing says they pass
        more = f" (and {len(uncollected) - 1} more)" if len(uncollected) > 1 else ""
        return "not_run", f"collection error on the base: {uncollected[0]}{more}"
    if name == "pytest" and head.result is not None and head.tests_run == 0:
        errors = [f.line for f in head.findings if "collection error" in f.line]
        if errors:
            return "not_run", f"no test ran on the change; collection error: {errors[0]}"
        return "not_run", "no test was collected"
    return "passed", None


def _not_run(name: CheckName, reason: str, scope: str = "") -> CheckResult:
    return CheckResult(name=name, command=[], state="not_run", scope=scope, skipped_reason=reason)


def _off(name: CheckName) -> CheckResult:
    return CheckResult(name=name, command=[], state="off", skipped_reason="switched off in settings")


def _env(ctx: _Context, root: Path) -> dict[str, str]:
    paths = [root, *([root / "src"] if (root / "src").is_dir() else [])]
    paths += [root / p for p in ctx.settings.extra_pythonpath]
    return {
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(str(p) for p in paths)),
        "PYRIGHT_PYTHON_IGNORE_WARNINGS": "1",
    }


def _describe(items: Sequence[str], what: str) -> str:
    shown = ", ".join(items[:5]) + (f", ... ({len(items)} in all)" if len(items) > 5 else "")
    return f"{shown} ({what})"


def _tail(result: SandboxResult | None) -> str:
    if result is None:
        return ""
    text = "\n".join(part for part in (result.stdout.strip(), result.stderr.strip()) if part)
    return "\n".join(text.splitlines()[-TAIL_LINES:])[-TAIL_CHARS:]
