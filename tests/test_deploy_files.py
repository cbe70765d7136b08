"""Dockerfile and docker-compose.yml: the images run real `diffusellm` commands with settings the code reads."""

from __future__ import annotations

import inspect
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
import yaml
from pydantic import BaseModel

from diffusellm.app.settings import ServerSettings
from diffusellm.config import Settings, default_config_path, load_settings
from diffusellm.forge import github_settings
from diffusellm.forge.github_settings import secrets_from_env

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
SAMPLES = {"POSTGRES_PASSWORD": "pw", "APP_ID": "123456", "WEBHOOK_SECRET": "hook",
           "DIFFUSELLM_WORKER_TOKEN": "wtok", "DIFFUSELLM_ADMIN_TOKEN": "atok", "GHE_HOST": ""}
REQUIRED_APP_ENV = {"APP_ID", "PRIVATE_KEY_PATH", "WEBHOOK_SECRET", "GHE_HOST", "DIFFUSELLM_WORKER_TOKEN",
                    "DIFFUSELLM_ADMIN_TOKEN", "DIFFUSELLM_STORE__URL"}


def _stages() -> dict[str, dict[str, Any]]:
    """Each build target's ENTRYPOINT (argv) and ENV names, from the Dockerfile."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    stages: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] = {}
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "FROM":
            assert len(words) == 4 and words[2].upper() == "AS", f"unnamed stage: {line}"
            current = stages.setdefault(words[3], {"env": set(), "entrypoint": None})
        elif words[0] == "ENTRYPOINT":
            current["entrypoint"] = json.loads(line.removeprefix("ENTRYPOINT").strip())
        elif words[0] == "ENV":
            current["env"].update(w.split("=", 1)[0] for w in words[1:] if "=" in w)
    return stages


def _diffusellm_argv(entrypoint: list[str]) -> list[str]:
    """The `diffusellm ...` command an ENTRYPOINT runs (directly, or through `sh -c "exec ..."`)."""
    if entrypoint[:2] == ["sh", "-c"]:
        words = shlex.split(entrypoint[2])
        assert words[0] == "exec", "the shell must exec the worker so it receives signals"
        return words[1:]
    return entrypoint


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _env_of(service: str) -> dict[str, str]:
    raw = _compose()["services"][service]["environment"]
    fill = lambda v: re.sub(r"\$\{(\w+)[^}]*\}", lambda m: SAMPLES.get(m.group(1), "x"), str(v))  # noqa: E731
    return {name: fill(value) for name, value in raw.items()}


def _is_setting(name: str) -> bool:
    """DIFFUSELLM_SECTION__KEY names a field of Settings (what pydantic-settings reads)."""
    model: type[BaseModel] = Settings
    parts = name.removeprefix("DIFFUSELLM_").lower().split("__")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if i < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def _read_by_code(name: str) -> bool:
    server = ServerSettings()
    if name in (server.worker_token_env, server.admin_token_env):
        return True
    if name == "DIFFUSELLM_CONFIG":
        with mock.patch.dict(os.environ, {name: "/etc/diffusellm/config.yaml"}):
            return default_config_path() == Path("/etc/diffusellm/config.yaml")
    if name.startswith("DIFFUSELLM_"):
        return _is_setting(name)
    return f'"{name}"' in inspect.getsource(github_settings)


def test_both_targets_run_real_diffusellm_subcommands_with_real_options() -> None:
    stages = _stages()
    assert {"app", "worker"} <= set(stages)
    for target in ("app", "worker"):
        argv = _diffusellm_argv(stages[target]["entrypoint"])
        assert argv[0] == "diffusellm", f"{target} does not run diffusellm: {argv}"
        helped = subprocess.run([sys.executable, "-m", "diffusellm", argv[1], "--help"],
                                capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert helped.returncode == 0, f"`diffusellm {argv[1]}` is not a subcommand: {helped.stderr}"
        for option in (w for w in argv[2:] if w.startswith("--")):
            assert option in helped.stdout, f"`diffusellm {argv[1]}` has no option {option}"
    assert _diffusellm_argv(stages["app"]["entrypoint"])[1] == "serve"
    assert _diffusellm_argv(stages["worker"]["entrypoint"])[1] == "worker"


def test_every_environment_name_in_the_images_and_compose_is_read_by_the_code() -> None:
    names = {n for stage in _stages().values() for n in stage["env"] if n.startswith("DIFFUSELLM_")}
    for service in ("app", "worker"):
        names |= set(_env_of(service))
    unknown = sorted(n for n in names if not _read_by_code(n))
    assert not unknown, f"set in the deployment files but read by no code: {unknown}"
    assert set(_env_of("app")) >= REQUIRED_APP_ENV
    worker_argv = " ".join(_diffusellm_argv(_stages()["worker"]["entrypoint"]))
    for var in re.findall(r"\$(\w+)", worker_argv):
        assert var in _env_of("worker"), f"the worker's entrypoint needs {var}"


def test_compose_environment_loads_as_settings_and_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = tmp_path / "github-app.pem"
    key.write_text("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n")
    mounted = tmp_path / "config.yaml"  # stands for ./config.yaml, which compose mounts
    mounted.write_text((ROOT / "config.yaml").read_text() + "\n", encoding="utf-8")
    mounted.write_text(mounted.read_text().replace("author_name: diffuseLLM", "author_name: from-the-file"))
    for service in ("app", "worker"):
        env = {**_env_of(service), "PRIVATE_KEY_PATH": str(key)}
        if "DIFFUSELLM_CONFIG" in env:  # compose mounts ./config.yaml there
            env["DIFFUSELLM_CONFIG"] = str(mounted)
        with monkeypatch.context() as patch:
            for name in [n for n in os.environ if n.startswith("DIFFUSELLM_")]:
                patch.delenv(name)
            for name, value in env.items():
                patch.setenv(name, value)
            settings = load_settings()
        secrets = secrets_from_env(env)
        assert secrets.app_id == "123456" and secrets.private_key is not None
        if service == "app":
            assert settings.store.url == "postgresql://diffusellm:pw@postgres:5432/diffusellm"
            assert settings.server.in_process_worker is False
            assert settings.server.admin_token(env) == "atok" and secrets.webhook_secret == "hook"
        else:
            assert settings.worker.server_url == "http://app:5001"
            assert settings.commit.author_name == "from-the-file", "the mounted config is read"
            assert settings.server.worker_token(env) == "wtok"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_app_image_command_serves_health_and_admin_pages(tmp_path: Path) -> None:
    argv = _diffusellm_argv(_stages()["app"]["entrypoint"])
    port = str(_free_port())
    argv = [port if argv[i - 1] == "--port" else "127.0.0.1" if argv[i - 1] == "--host" else w
            for i, w in enumerate(argv)]  # loopback and a free port instead of the image's 0.0.0.0:5001
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DIFFUSELLM_STATE_DIR": str(tmp_path / "state"),
           "DIFFUSELLM_STORE__URL": f"sqlite:///{tmp_path / 'jobs.sqlite'}",
           "DIFFUSELLM_SERVER__IN_PROCESS_WORKER": "false", "DIFFUSELLM_ADMIN_TOKEN": "atok",
           "DIFFUSELLM_CONFIG": str(ROOT / "config.yaml")}
    proc = subprocess.Popen([sys.executable, "-m", *argv], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "exited"
            try:
                assert httpx.get(f"{url}/healthz", timeout=2).status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the app did not start within 60 s"
                time.sleep(0.3)
        login = httpx.get(f"{url}/admin/login", timeout=5)
        assert login.status_code == 200 and "Admin token" in login.text
        assert httpx.get(f"{url}/admin/static/htmx.min.js", timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_installed_package_ships_the_admin_templates_and_static_files(tmp_path: Path) -> None:
    """`pip install .` (what both images run) must carry the non-Python files the pages need."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "diffusellm", src / "diffusellm",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(tmp_path / "dist"), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [wheel] = (tmp_path / "dist").glob("diffusellm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(ROOT).as_posix() for d in ("templates", "static")
               for p in (ROOT / "diffusellm/app" / d).iterdir() if p.is_file()}
    assert shipped, "no admin templates or static files found"
    assert shipped <= names, f"missing from the wheel: {sorted(shipped - names)}"
