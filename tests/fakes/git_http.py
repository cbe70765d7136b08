"""GitHub double, git side: smart HTTP for clone, fetch and push by `git http-backend` as CGI."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CgiResponse:
    """What http-backend answered."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def wants_push(path_info: str, query: str) -> bool:
    """Whether the request is part of a push (receive-pack), which needs contents: write."""
    return path_info.endswith("/git-receive-pack") or "service=git-receive-pack" in query


def run_backend(project_root: Path, *, method: str, path_info: str, query: str,
                headers: Mapping[str, str], body: bytes, remote_user: str) -> CgiResponse:
    """Run one request through `git http-backend` (https://git-scm.com/docs/git-http-backend)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(project_root),
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_PROJECT_ROOT": str(project_root),
        "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path_info, "REQUEST_METHOD": method,
        "QUERY_STRING": query, "CONTENT_TYPE": headers.get("content-type", ""),
        "CONTENT_LENGTH": str(len(body)), "REMOTE_USER": remote_user,
        "REMOTE_ADDR": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1",
    }
    if headers.get("content-encoding"):
        env["HTTP_CONTENT_ENCODING"] = headers["content-encoding"]
    if headers.get("git-protocol"):
        env["GIT_PROTOCOL"] = headers["git-protocol"]
    done = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True,
                          timeout=300, check=False)
    return _parse_cgi(done.stdout, done.stderr)


def _parse_cgi(out: bytes, err: bytes) -> CgiResponse:
    split = out.find(b"\r\n\r\n")
    sep = 4
    if split < 0:
        split, sep = out.find(b"\n\n"), 2
    if split < 0:
        return CgiResponse(500, [("content-type", "text/plain")], err or b"bad CGI output")
    status = 200
    headers: list[tuple[str, str]] = []
    for line in out[:split].decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name:
            headers.append((name.strip(), value.strip()))
    return CgiResponse(status, headers, out[split + sep:])
