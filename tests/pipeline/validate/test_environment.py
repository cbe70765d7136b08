"""Repository environments: what each declaration kind installs, and a real offline uv build in the sandbox."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as metadata
import shutil
import zipfile
from pathlib import Path

import pytest

from diffusellm.pipeline.validate.checks import validate_change
from diffusellm.pipeline.validate.env_cache import Environment, prepare_environment, trim_cache
from diffusellm.pipeline.validate.environment import EnvironmentInfo, plan_environment
from diffusellm.pipeline.validate.sandbox import BubblewrapSandbox
from diffusellm.pipeline.validate.settings import EnvironmentSettings, ValidationSettings
from tests.pipeline.validate.test_checks import check, make_head, make_repo, needs_bwrap, write_tree

PY = "/usr/bin/python3"
TEST_WHEELS = ("pytest", "pluggy", "iniconfig", "packaging", "pytest-timeout", "pygments")


def args_for(root: Path, **settings: object) -> tuple[str, list[str]]:
    plan = plan_environment(root, EnvironmentSettings.model_validate(settings), python=PY)
    assert plan is not None
    return plan.how, [w for step in plan.steps for w in step]


def test_nothing_declared_builds_nothing(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pyproject.toml": "[tool.ruff]\nline-length = 100\n"})
    assert plan_environment(tmp_path, EnvironmentSettings(), python=PY) is None


def test_each_declaration_kind_becomes_install_arguments(tmp_path: Path) -> None:
    write_tree(tmp_path, {
        "pyproject.toml": (
            "[project]\nname = 'p'\nversion = '1'\n[project.optional-dependencies]\n"
            "testing = ['a']\ndocs = ['b']\n[dependency-groups]\ntest = ['c']\nlint = ['d']\n"
        ),
        "requirements-dev.txt": "e\n", "requirements/test.txt": "f\n", "test-requirements.txt": "g\n",
        "tox.ini": "[testenv]\ndeps =\n    h>=1\n    -rrequirements/test.txt\n    {env:EXTRA}\n",
        "pylock.toml": "lock-version = '1.0'\n",
    })
    how, words = args_for(tmp_path, find_links=["/wheels"], offline=True)
    # tox names requirements/test.txt: that is how the project tests, so requirements-dev.txt is left out
    assert how == ("pylock.toml, dependency groups [test], test-requirements.txt, tox.ini [testenv] deps, "
                   "the project, editable, extras [testing]")
    install = words[words.index("pip"):]
    assert install[:5] == ["pip", "install", "--python", "{venv}/bin/python", "--find-links"]
    assert "--offline" in install and install[7:9] == ["-r", "pylock.toml"]
    assert install[9:] == ["--group", "test", "-r", "test-requirements.txt", "h>=1", "-r", "requirements/test.txt",
                           "-e", ".[testing]", "pytest", "pytest-timeout"]
    # without tox every requirement file is installed
    (tmp_path / "tox.ini").unlink()
    how, _ = args_for(tmp_path)
    assert "requirements-dev.txt, requirements/test.txt, test-requirements.txt" in how


def test_a_uv_lock_is_synced_and_setup_commands_replace_detection(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pyproject.toml": "[project]\nname = 'p'\nversion = '1'\n", "uv.lock": "version = 1\n"})
    how, words = args_for(tmp_path)
    assert how == "uv.lock" and words[1:5] == ["sync", "--frozen", "--all-extras", "--all-groups"]
    plan = plan_environment(tmp_path, EnvironmentSettings(), python=PY, setup=["pip install -e ."])
    assert plan is not None and plan.how == "setup commands (repository config)"
    assert ("sh", "-c", "pip install -e .") in plan.steps


def test_the_cache_key_follows_the_declarations_and_the_python(tmp_path: Path) -> None:
    write_tree(tmp_path, {"requirements.txt": "a==1\n"})
    first = plan_environment(tmp_path, EnvironmentSettings(), python=PY)
    write_tree(tmp_path, {"pkg/code.py": "X = 1\n"})
    same = plan_environment(tmp_path, EnvironmentSettings(), python=PY)
    other_python = plan_environment(tmp_path, EnvironmentSettings(), python="/usr/bin/python3.13")
    write_tree(tmp_path, {"requirements.txt": "a==2\n"})
    bumped = plan_environment(tmp_path, EnvironmentSettings(), python=PY)
    assert first is not None and same is not None and other_python is not None and bumped is not None
    assert first.key == same.key and len({first.key, other_python.key, bumped.key}) == 3


def test_the_cache_drops_least_recently_used_environments(tmp_path: Path) -> None:
    import json
    import os

    for age, name in enumerate(["old", "mid", "new"]):
        entry = tmp_path / name
        write_tree(entry, {"meta.json": json.dumps({"size": 600}), "last-used": ""})
        os.utime(entry / "last-used", (1000 + age, 1000 + age))
    removed = trim_cache(tmp_path, 1300, keep=tmp_path / "old")
    assert removed == [tmp_path / "mid"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "old"]


def repack(name: str, wheels: Path) -> None:
    """A wheel of an installed distribution (its files and metadata), so installs need no network."""
    dist = metadata.distribution(name)
    files = [f for f in dist.files or [] if not str(f).startswith("..") and "__pycache__" not in str(f)]
    skip = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
    info = next(str(f).split("/")[0] for f in files if ".dist-info/" in str(f))
    tag = "py3-none-any"
    target = wheels / f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}-{tag}.whl"
    record: list[str] = []
    with zipfile.ZipFile(target, "w") as whl:
        for rel in files:
            if str(rel).startswith(info + "/") and Path(str(rel)).name in skip:
                continue
            data = Path(str(rel.locate())).read_bytes()
            whl.writestr(str(rel), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{rel},sha256={digest},{len(data)}")
        record.append(f"{info}/RECORD,,")
        whl.writestr(f"{info}/RECORD", "\n".join(record) + "\n")


def tiny_wheel(wheels: Path) -> None:
    """tinydep 1.0: the repository's own test dependency, absent from diffusellm's environment."""
    info = "tinydep-1.0.dist-info"
    files = {
        "tinydep/__init__.py": "VALUE = 42\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: tinydep\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(wheels / "tinydep-1.0-py3-none-any.whl", "w") as whl:
        for rel, text in files.items():
            whl.writestr(rel, text)
        whl.writestr(f"{info}/RECORD", "".join(f"{rel},,\n" for rel in files) + f"{info}/RECORD,,\n")


USES_TINYDEP = "import tinydep\n\n\ndef test_value() -> None:\n    assert tinydep.VALUE == 42\n"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    for name in TEST_WHEELS:
        repack(name, folder)
    tiny_wheel(folder)
    folder.chmod(0o755)  # the sandbox's unprivileged user reads it
    for wheel in folder.iterdir():
        wheel.chmod(0o644)
    return folder


@needs_bwrap
@pytest.mark.timeout(600)
def test_tests_run_in_the_repository_environment_built_offline_and_cached(tmp_path: Path, wheels: Path) -> None:
    if shutil.which("uv") is None and not _has_uv():
        pytest.skip("uv is not installed")
    base = make_repo(tmp_path, {"requirements-test.txt": "tinydep==1.0\n", "tests/test_dep.py": USES_TINYDEP})
    head = make_head(base, tmp_path, {})
    env_settings = EnvironmentSettings(find_links=[str(wheels)], offline=True, network=False)
    sandbox = BubblewrapSandbox()

    def prepare() -> Environment | EnvironmentInfo | None:
        return prepare_environment(base, env_settings, default_python=_python(), cache_dir=tmp_path / "envs",
                                   sandbox=sandbox)

    built = prepare()
    assert isinstance(built, Environment), built
    assert built.info.how == "requirements-test.txt" and not built.info.cache_hit
    assert built.info.packages >= 7 and built.info.error is None
    settings = ValidationSettings(ruff=False, pyright=False)
    report = validate_change(base_dir=base, head_dir=head, changed_files=[], tests=None, acceptance_tests=[],
                             sandbox=sandbox, settings=settings, environment=built)
    tests = check(report, "pytest")
    assert (tests.state, tests.tests_run) == ("passed", 2), tests.output_tail
    assert tests.command[0] == str(built.python) and report.environment == built.info
    without = validate_change(base_dir=base, head_dir=head, changed_files=[], tests=None, acceptance_tests=[],
                              sandbox=sandbox, settings=settings)
    bare = check(without, "pytest")  # diffusellm's own interpreter lacks tinydep
    assert bare.state == "not_run" and not without.passed and bare.skipped_reason is not None
    assert bare.skipped_reason.startswith("collection error on the base: tests/test_dep.py - ")
    assert "No module named 'tinydep'" in bare.skipped_reason
    again = prepare()
    assert isinstance(again, Environment) and again.info.cache_hit and again.python == built.python


@needs_bwrap
@pytest.mark.timeout(600)
def test_an_environment_that_cannot_be_built_leaves_the_tests_not_run(tmp_path: Path, wheels: Path) -> None:
    if not _has_uv():
        pytest.skip("uv is not installed")
    base = make_repo(tmp_path, {"requirements.txt": "not-on-any-index==9.9\n"})
    head = make_head(base, tmp_path, {})
    env_settings = EnvironmentSettings(find_links=[str(wheels)], offline=True, network=False)
    failed = prepare_environment(base, env_settings, default_python=_python(), cache_dir=tmp_path / "envs",
                                 sandbox=BubblewrapSandbox())
    assert isinstance(failed, EnvironmentInfo) and failed.error is not None
    assert "not-on-any-index" in failed.error
    assert not list((tmp_path / "envs").iterdir())  # no half-built environment is left behind
    report = validate_change(base_dir=base, head_dir=head, changed_files=[], tests=None, acceptance_tests=[],
                             sandbox=BubblewrapSandbox(), settings=ValidationSettings(ruff=False, pyright=False),
                             environment=failed)
    tests = check(report, "pytest")
    assert tests.state == "not_run" and tests.skipped_reason is not None
    assert tests.skipped_reason.startswith("the repository's environment failed to build: ")
    assert report.missing and not report.passed


def _has_uv() -> bool:
    try:
        metadata.distribution("uv")
    except metadata.PackageNotFoundError:
        return False
    return True


def _python() -> str:
    import sys

    return sys.executable
