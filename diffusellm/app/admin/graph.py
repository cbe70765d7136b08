"""Admin API `/query_graph`: definitions, callers and callees of a symbol from a knowledge graph."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from diffusellm.errors import InputError
from diffusellm.pipeline.understand.digest.build import digest_repository
from diffusellm.pipeline.understand.graph import KnowledgeGraph
from diffusellm.state import repo_state

_FULL_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
LOCAL_PREFIX = "local:"


class GraphQueryError(InputError):
    """A graph query that cannot be answered; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, *, hint: str = "", status: int = 400) -> None:
        super().__init__(message, hint=hint)
        self.status = status


def checkout_dir(state_dir: Path, full_name: str) -> Path:
    """Where workers keep their checkout of `owner/name` (as `worker.execute` lays it out)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", full_name.replace("/", "__"))
    return state_dir.expanduser() / "forges" / safe / "checkout"


def local_repo(repo: str, local_repos: Sequence[Path]) -> Path | None:
    """The configured local repository `repo` names (`local:/abs/path` or `/abs/path`), or None."""
    raw = repo.removeprefix(LOCAL_PREFIX)
    if not raw.startswith("/"):
        return None
    wanted = Path(raw).resolve()
    for configured in local_repos:
        if configured.resolve() == wanted:
            return wanted
    raise GraphQueryError(f"{repo} is not one of the configured local repositories",
                          hint="query a repository the app was configured with", status=403)


def graph_path(repo: str, *, state_dir: Path, local_repos: Sequence[Path]) -> Path:
    """The knowledge graph of `repo`; a configured local repository is digested first
    (incrementally), a GitHub repository must have been digested by a job already."""
    local = local_repo(repo, local_repos)
    if local is not None:
        db = repo_state(state_dir, local).ensure().graph_db
        digest_repository(local, db)
        return db
    if not _FULL_NAME.match(repo) or ".." in repo:
        raise GraphQueryError(f"{repo!r} is neither owner/name nor a local repository path",
                              hint="pass repo=owner/name or repo=local:/abs/path")
    db = repo_state(state_dir, checkout_dir(state_dir, repo)).graph_db
    if not db.is_file():
        raise GraphQueryError(f"no knowledge graph for {repo} yet",
                              hint="a job on this repository digests it; run one first",
                              status=404)
    return db


def query_graph(db: Path, symbol: str) -> dict[str, Any]:
    """Definitions of `symbol` with their callers and callees (the CLI's query-graph answer)."""
    with KnowledgeGraph(db) as graph:
        definitions = graph.definitions(symbol)
        if not definitions:
            raise GraphQueryError(f"no symbol named {symbol!r} in the knowledge graph",
                                  hint="use a qualified name such as pkg.module.function",
                                  status=404)
        qualnames = sorted({d.qualname for d in definitions})
        return {
            "symbol": symbol,
            "definitions": [asdict(d) for d in definitions],
            "callers": [asdict(c) for q in qualnames for c in graph.callers(q)],
            "callees": sorted({c for q in qualnames for c in graph.callees(q)}),
        }
