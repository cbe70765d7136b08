"""Phase 6 environment cache: build a repository's test environment with uv in the sandbox, keep it
in the state folder keyed by its declarations, rename it into place atomically, trim the cache (LRU)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import structlog

from diffusellm.pipeline.validate.environment import (
    PROJECT,
    VENV,
    EnvironmentInfo,
    EnvironmentPlan,
    plan_environment,
)
from diffusellm.pipeline.validate.outputs import OutputRefusedError, read_output
from diffusellm.pipeline.validate.sandbox import Limits, Sandbox, SandboxResult
from diffusellm.pipeline.validate.settings import EnvironmentSettings

META = "meta.json"
USED = "last-used"
log = structlog.get_logger(__name__)


class EnvironmentBuildError(Exception):
    """The repository's environment could not be built; the message says which step and why."""


@dataclass(frozen=True)
class Environment:
    """A built environment: the interpreter the checks use and the folders the sandbox must show."""

    python: Path
    mounts: tuple[Path, ...]
    info: EnvironmentInfo


def uv_binary() -> str:
    """The uv executable installed with diffusellm (the `uv` wheel)."""
    try:
        from uv import find_uv_bin  # pyright: ignore[reportMissingTypeStubs]
    except ImportError as exc:
        raise EnvironmentBuildError("uv is not installed with diffusellm (pip install uv)") from exc
    return str(find_uv_bin())


def ensure_environment(
    plan: EnvironmentPlan,
    *,
    cache_dir: Path,
    source: Path,
    sandbox: Sandbox,
    settings: EnvironmentSettings,
) -> Environment:
    """The cached environment for `plan`, built from `source` (a checkout) when missing."""
    entry = cache_dir / plan.key
    if (entry / META).is_file():
        (entry / USED).touch()
        return _environment(entry, cache_hit=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    build = cache_dir / f".build-{plan.key}-{uuid.uuid4().hex[:8]}"
    try:
        started = time.monotonic()
        _build(plan, build, source, sandbox, settings)
        _write_meta(build, plan, time.monotonic() - started)
        try:
            os.rename(build, entry)  # atomic: other jobs see no environment or a whole one
        except OSError:
            if not (entry / META).is_file():
                raise
    finally:
        shutil.rmtree(build, ignore_errors=True)
    (entry / USED).touch()
    trim_cache(cache_dir, settings.max_total_mb * 1024 * 1024, keep=entry)
    return _environment(entry, cache_hit=False)


def _build(
    plan: EnvironmentPlan, build: Path, source: Path, sandbox: Sandbox, settings: EnvironmentSettings
) -> None:
    shutil.copytree(source, build / PROJECT, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    venv = build / VENV
    env = {
        "UV_CACHE_DIR": str(build / "uv-cache"),
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_PROGRESS": "1",
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv}/bin:/usr/local/bin:/usr/bin:/bin",
    }
    uv = uv_binary()
    network = settings.network and not settings.offline
    if network:  # the system trust store (/etc/ssl is bound only for a networked step); offline, uv
        env["UV_SYSTEM_CERTS"] = "1"  # must not look for certificates it cannot find
    limits = Limits(wall_seconds=float(settings.install_timeout_s), cpu_seconds=settings.install_timeout_s)
    for step in plan.steps:
        argv = [word.replace("{uv}", uv).replace("{venv}", str(venv)) for word in step]
        wrapped = ["sh", "-c", f'cd {PROJECT} && exec "$@"', "sh", *argv]
        result = sandbox.run(wrapped, workdir=build, env=env, limits=limits, network=network,
                             ro_paths=[Path(plan.python).resolve().parent.parent,
                                       *(Path(f) for f in settings.find_links)])
        if result.returncode != 0 or result.timed_out:
            shown = " ".join(w.replace("{uv}", "uv") for w in step[:3])
            raise EnvironmentBuildError(f"`{shown} ...` failed: {_reason(result)}")
    for scratch in (PROJECT, "uv-cache"):
        shutil.rmtree(build / scratch, ignore_errors=True)


def _reason(result: SandboxResult) -> str:
    if result.timed_out:
        return result.killed_reason or "timed out"
    lines = [ln.strip(" ×╰─▶│") for ln in (result.stderr or result.stdout).splitlines() if ln.strip()]
    lines = [ln for ln in lines if ln]
    because = [ln.removeprefix("cause: ") for ln in lines if ln.lower().startswith(("because", "cause: "))]
    flagged = [ln for ln in lines if "error" in ln.lower() and not ln.startswith("hint")]
    chosen = because[:1] or flagged[-1:] or lines[-1:] or [f"exit code {result.returncode}"]
    return chosen[0][:400]


def _write_meta(build: Path, plan: EnvironmentPlan, seconds: float) -> None:
    meta = {
        "how": plan.how, "python": plan.python, "build_s": round(seconds, 2),
        "packages": len(list((build / VENV).glob("lib/python*/site-packages/*.dist-info"))),
        "size": _size(build / VENV),
    }
    (build / META).write_text(json.dumps(meta), encoding="utf-8")


def _environment(entry: Path, *, cache_hit: bool) -> Environment:
    meta = json.loads((entry / META).read_text(encoding="utf-8"))
    python = entry / VENV / "bin" / "python"
    info = EnvironmentInfo(
        how=str(meta["how"]), python=str(python), packages=int(meta["packages"]),
        build_s=0.0 if cache_hit else float(meta["build_s"]), cache_hit=cache_hit,
    )
    return Environment(python, (entry, *_base_prefix(entry / VENV)), info)


def _base_prefix(venv: Path) -> list[Path]:
    """The installation the venv's interpreter comes from (pyvenv.cfg `home`), to show it too."""
    try:
        lines = read_output(venv, "pyvenv.cfg", limit=64 * 1024).decode("utf-8", "replace").splitlines()
    except OutputRefusedError:  # the build ran the repository's code: never block on what it left
        return []
    homes = [ln.split("=", 1)[1].strip() for ln in lines if ln.split("=", 1)[0].strip() == "home"]
    return [Path(homes[0]).parent] if homes else []


def _size(folder: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


def trim_cache(cache_dir: Path, max_bytes: int, *, keep: Path) -> list[Path]:
    """Remove the least recently used environments until the total fits; never `keep`."""
    entries: list[tuple[float, int, Path]] = []
    for entry in cache_dir.iterdir():
        if entry.name.startswith(".") or not (entry / META).is_file():
            continue
        used = entry / USED
        stamp = used.stat().st_mtime if used.exists() else entry.stat().st_mtime
        size = int(json.loads((entry / META).read_text(encoding="utf-8")).get("size", 0))
        entries.append((stamp, size, entry))
    total = sum(size for _, size, _ in entries)
    removed: list[Path] = []
    for _stamp, size, entry in sorted(entries):
        if total <= max_bytes:
            break
        if entry == keep:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        log.info("environment.removed", path=str(entry), size=size)
        total -= size
        removed.append(entry)
    return removed


def find_python(version: str) -> str:
    """An interpreter of `version` on the worker (uv looks in PATH and its own installs)."""
    try:
        done = subprocess.run(
            [uv_binary(), "python", "find", "--no-python-downloads", version],
            capture_output=True, text=True, timeout=60, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentBuildError(f"cannot look for Python {version}: {exc}") from exc
    if done.returncode != 0 or not done.stdout.strip():
        raise EnvironmentBuildError(
            f"Python {version} is not installed on the worker (install it: uv python install {version})"
        )
    return done.stdout.strip().splitlines()[-1]


def prepare_environment(
    source: Path,
    settings: EnvironmentSettings,
    *,
    default_python: str,
    cache_dir: Path,
    sandbox: Sandbox,
) -> Environment | EnvironmentInfo | None:
    """The repository's test environment (built or from the cache); the record of why it could not
    be built; or None when building is off. Nothing declared: a record saying so (no error)."""
    if not settings.build:
        return None
    plan = None
    python = default_python
    try:
        python = find_python(settings.python_version) if settings.python_version else default_python
        plan = plan_environment(source, settings, python=python, setup=settings.setup)
        if plan is None:
            return EnvironmentInfo(how="nothing declared; the checks' own interpreter", python=python)
        return ensure_environment(plan, cache_dir=cache_dir, source=source, sandbox=sandbox, settings=settings)
    except (EnvironmentBuildError, OSError) as exc:
        log.warning("environment.failed", error=str(exc))
        how = plan.how if plan is not None else "not detected"
        return EnvironmentInfo(how=how, python=python, error=str(exc))
