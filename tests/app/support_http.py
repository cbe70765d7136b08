"""Helpers for the HTTP-surface tests: a `diffusellm serve` process, raw sockets, the server's RSS."""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

WEBHOOK_SECRET = "webhook-secret-for-tests"
WORKER_TOKEN = "worker-token-for-tests-0123456789"
ADMIN_TOKEN = "admin-token-for-tests-0123456789"
MIB = 1024 * 1024


@dataclass
class Served:
    """A running `diffusellm serve` on 127.0.0.1."""

    proc: subprocess.Popen[bytes]
    port: int
    store_url: str

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    def memory_kib(self, field: str) -> int:
        """VmRSS (now) or VmHWM (peak so far) of the server process, from /proc."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        found = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
        assert found, f"no {field} in /proc/{self.proc.pid}/status"
        return int(found.group(1))


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve(tmp: Path, *settings: str, args: tuple[str, ...] = ()) -> Served:
    """`python -m diffusellm serve` with all three secrets, no embedded worker, `settings` (each
    a `--set` override) and further command-line `args`. FORWARDED_ALLOW_IPS=* in its environment
    shows that uvicorn's own variable is not what decides whom to believe."""
    port = free_port()
    store_url = f"sqlite:///{tmp / 'jobs.sqlite'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APP_ID", "PRIVATE_KEY", "DIFFUSELLM_"))}
    env.update({"DIFFUSELLM_STATE_DIR": str(tmp / "state"), "DIFFUSELLM_STORE__URL": store_url,
                "WEBHOOK_SECRET": WEBHOOK_SECRET, "DIFFUSELLM_WORKER_TOKEN": WORKER_TOKEN,
                "DIFFUSELLM_ADMIN_TOKEN": ADMIN_TOKEN, "FORWARDED_ALLOW_IPS": "*"})
    overrides = [a for s in ("server.in_process_worker=false", *settings) for a in ("--set", s)]
    proc = subprocess.Popen([sys.executable, "-m", "diffusellm", "serve", "--port", str(port), *overrides, *args],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    served = Served(proc, port, store_url)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited"
        try:
            if httpx.get(f"{served.url}/healthz", timeout=2).status_code == 200:
                return served
        except httpx.TransportError:
            time.sleep(0.3)
    proc.terminate()
    raise AssertionError("the server did not start within 90 s")


def stop(served: Served) -> None:
    """Terminate the server and wait for it."""
    served.proc.terminate()
    served.proc.wait(timeout=30)


def client(served: Served, source: str) -> httpx.Client:
    """An HTTP client whose requests come from loopback address `source` (each test its own, so
    the per-address login throttle of one test does not touch another)."""
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=served.url, transport=transport, timeout=30, follow_redirects=False)


def chunked(total: int, piece: int = 256 * 1024) -> Iterator[bytes]:
    """`total` bytes of JSON-ish filler in HTTP/1.1 chunked framing, then the last chunk."""
    sent = 0
    while sent < total:
        size = min(piece, total - sent)
        yield f"{size:x}\r\n".encode() + b" " * size + b"\r\n"
        sent += size
    yield b"0\r\n\r\n"


def raw_request(port: int, head: bytes, body: Iterable[bytes], *, source: str = "127.0.0.1") -> int:
    """Send `head` and then `body` piece by piece, stopping as soon as the server answers or hangs
    up; returns the answer's status code (the server may answer before the body is all sent)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60, source_address=(source, 0)) as sock:
        sock.sendall(head)
        for piece in body:
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
        return read_status(sock)


def read_status(sock: socket.socket) -> int:
    """The status code of the answer arriving on `sock`."""
    answer = b""
    while b"\r\n" not in answer:
        part = sock.recv(4096)
        if not part:
            break
        answer += part
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", answer)
    assert match, f"no HTTP answer: {answer[:200]!r}"
    return int(match.group(1))


def post_head(path: str, headers: dict[str, str]) -> bytes:
    """A POST request's head (no body) with `headers`."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
