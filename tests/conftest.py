"""Shared fixtures: real git repositories built in tmp_path, settings with a private state folder."""

from __future__ import annotations

import os
import subprocess
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from diffusellm.config import Settings, load_settings
from diffusellm.models.settings import TransformersLLM

if TYPE_CHECKING:
    from diffusellm.models.hf.generator import HFTextGenerator

ROOT = Path(__file__).resolve().parents[1]
SDISTS = ROOT / ".state" / "sdists"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.invalid",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.invalid",
}


def seed_converted_model(state: Path) -> Path:
    """Give a fresh state folder the embedded SmolLM2 already converted, as a link to one copy in the
    checkout's `.state/models` (converted there once, on first use): each CLI or worker process of a
    test would otherwise convert the GGUF again into its own state folder (about 30 s each)."""
    from diffusellm.models.hf.load import converted_folder, model_files  # torch only where needed

    shared, _ = converted_folder(model_files(TransformersLLM().model), ROOT / ".state")
    link = state / "models" / shared.name
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(shared, target_is_directory=True)
    return link


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` with a fixed identity; return stdout."""
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=env
    )
    return done.stdout


def make_repo(root: Path, files: Mapping[str, str], message: str = "Initial commit") -> Path:
    """A git repository at `root` with `files` committed on branch main."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return root


def unpack_sdist(name: str, dest: Path) -> Path:
    """Unpack a fixture sdist fetched by scripts/setup.sh into `dest` and make it a git repository."""
    archive = SDISTS / f"{name}.tar.gz"
    if not archive.exists():
        pytest.fail(f"{archive} is missing: run `make setup` (scripts/setup.sh) first")
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    repo = dest / name
    git(repo, "init", "-q", "-b", "main")
    # --force: an sdist ships files its own .gitignore lists (humanize's generated _version.py),
    # and the project does not import without them.
    git(repo, "add", "-A", "--force")
    git(repo, "commit", "-q", "-m", f"Import {name}")
    return repo


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings with the state folder inside the test's tmp_path; checks use diffusellm's own
    interpreter (tests have no network to build a repository's environment; test_environment does,
    offline)."""
    return load_settings(None, [f"state_dir={tmp_path / 'state'}", "validation.environment.build=false"])


@pytest.fixture(scope="session")
def llm_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state folder for the session; the embedded GGUF is converted into it once."""
    return tmp_path_factory.mktemp("llm-state")


@pytest.fixture(scope="session")
def smollm(llm_state: Path) -> HFTextGenerator:
    """The embedded SmolLM2-135M-Instruct on the CPU, loaded once for every test folder that needs it
    (first load: converts the GGUF)."""
    from diffusellm.models.hf.generator import HFTextGenerator  # torch only for tests that use it

    return HFTextGenerator.load(TransformersLLM(), llm_state)
