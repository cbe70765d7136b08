"""Where per-repository state lives: style artifacts, the knowledge graph, worktrees and job reports."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RepoState:
    """Paths inside the state folder that belong to one repository."""

    root: Path

    @property
    def style_dir(self) -> Path:
        """ruff.toml and naming_conventions.db written by the style profiler."""
        return self.root / "style"

    @property
    def graph_db(self) -> Path:
        """The SQLite knowledge graph written by digestion."""
        return self.root / "graph.sqlite"

    @property
    def worktrees(self) -> Path:
        """Parent folder of the git worktrees jobs work in."""
        return self.root / "worktrees"

    @property
    def jobs(self) -> Path:
        """One folder per job: report.json, summary.md, change.patch."""
        return self.root / "jobs"

    def ensure(self) -> RepoState:
        """Create the folders; returns self."""
        for path in (self.style_dir, self.worktrees, self.jobs):
            path.mkdir(parents=True, exist_ok=True)
        return self


def repo_state(state_dir: Path, repo_root: Path) -> RepoState:
    """The state of `repo_root`: named after the folder, keyed by a hash of its absolute path."""
    absolute = repo_root.resolve()
    digest = hashlib.sha256(str(absolute).encode()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", absolute.name) or "repo"
    return RepoState(state_dir.expanduser() / "repos" / f"{name}-{digest}")
