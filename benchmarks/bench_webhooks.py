"""Benchmark of the webhook receiver: 202 latency under a steady stream of signed deliveries.

    .venv/bin/python benchmarks/bench_webhooks.py [--rate 100] [--seconds 20] [--out FILE]

Starts the real app (`python -m diffusellm serve`) in its own process on 127.0.0.1 with a SQLite
store, WEBHOOK_SECRET set, the in-process worker off and no GitHub App credentials, then sends
GitHub's example `issues.labeled` payload (from ../shared/github/webhook-examples), each with its
own X-GitHub-Delivery id and HMAC signature, at a fixed rate (open loop: a slow answer does not
delay the next send). Latency is measured from each request's scheduled send time to its 202.

Triage needs the GitHub API, so with no APP_ID every triage fails after the 202; the benchmark
then checks that nothing was lost: every delivery id is recorded by the store and every one is
still in the inbox, waiting for a retry. Loopback only; bounded by --rate × --seconds requests.
Prints the figures and writes them as JSON (default benchmarks/.cache/bench_webhooks.json).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import math
import os
import platform
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".cache"
SECRET = "bench-webhook-secret"
MAX_REQUESTS = 10_000


def shared_dir() -> Path:
    """The workplace's shared/ folder: $DIFFUSELLM_SHARED_DIR, else beside the repository."""
    explicit = os.environ.get("DIFFUSELLM_SHARED_DIR")
    return Path(explicit) if explicit else ROOT.parent / "shared"


def example_payload() -> dict[str, Any]:
    """GitHub's example issues.labeled delivery, with the trigger label."""
    path = shared_dir() / "github/webhook-examples/api.github.com/issues/labeled.payload.json"
    payload: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    payload["label"]["name"] = "diffusellm"
    payload["installation"] = {"id": 77, "node_id": "MDIzOkluc3RhbGxhdGlvbjc3"}
    return payload


@dataclass(frozen=True)
class Delivery:
    """One prepared request: id, body and signature computed before the clock starts."""

    delivery_id: str
    body: bytes
    signature: str


def prepare(count: int) -> list[Delivery]:
    """`count` deliveries with unique ids and issue numbers, each signed as GitHub signs."""
    base = example_payload()
    out: list[Delivery] = []
    for i in range(count):
        base["issue"]["number"] = 1000 + i
        body = json.dumps(base).encode("utf-8")
        sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        out.append(Delivery(str(uuid.uuid4()), body, sig))
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The app exactly as `diffusellm serve` builds it, but logging exceptions as plain tracebacks
# instead of the default renderer's (a diagnostic: see docs/PERFORMANCE.md, "Webhooks").
PLAIN_TRACEBACK_LAUNCHER = """
import logging, sys
import structlog
from diffusellm.app.main import build_app
from diffusellm.app.server import serve
from diffusellm.config import load_settings
settings = load_settings(None, ["server.host=127.0.0.1", "server.port=" + sys.argv[1]])
structlog.configure(
    processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"),
                structlog.dev.ConsoleRenderer(colors=False,
                                              exception_formatter=structlog.dev.plain_traceback)],
    wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
serve(build_app(settings), settings.server)
"""
TRIAGE_FAILED = re.compile(r"\] webhook\.triage_failed")
GITHUB_TIMEOUT_S = 10.0
"""GitHub gives up on a delivery that has not answered within 10 seconds."""


def start_app(work: Path, port: int, *, plain_tracebacks: bool) -> subprocess.Popen[bytes]:
    """The real app in its own process, logging to work/app.log."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("APP_ID", "PRIVATE_KEY", "GHE_HOST", "DIFFUSELLM_"))}
    env.update({"WEBHOOK_SECRET": SECRET, "DIFFUSELLM_STATE_DIR": str(work / "state"),
                "DIFFUSELLM_STORE__URL": f"sqlite:///{work / 'jobs.sqlite'}",
                "DIFFUSELLM_SERVER__IN_PROCESS_WORKER": "false"})
    log = (work / "app.log").open("wb")
    command = [sys.executable, "-m", "diffusellm", "serve", "--host", "127.0.0.1",
               "--port", str(port)]
    if plain_tracebacks:
        command = [sys.executable, "-c", PLAIN_TRACEBACK_LAUNCHER, str(port)]
    return subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=work)


def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the app exited during start-up; see app.log")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the app did not become healthy within 60 s")


@dataclass(frozen=True)
class Sample:
    delivery_id: str
    status: int
    outcome: str
    from_schedule_s: float
    from_send_s: float


async def _send(client: httpx.AsyncClient, url: str, d: Delivery, due: float) -> Sample:
    await asyncio.sleep(max(0.0, due - time.perf_counter()))
    sent = time.perf_counter()
    headers = {"X-GitHub-Event": "issues", "X-GitHub-Delivery": d.delivery_id,
               "X-Hub-Signature-256": d.signature, "Content-Type": "application/json",
               "User-Agent": "GitHub-Hookshot/bench"}
    try:
        post = client.post(f"{url}/webhooks/github", content=d.body, headers=headers)
        answer = await asyncio.wait_for(post, GITHUB_TIMEOUT_S)
        status, outcome = answer.status_code, str(answer.json().get("status", ""))
    except (httpx.HTTPError, TimeoutError) as exc:
        status, outcome = 0, type(exc).__name__
    done = time.perf_counter()
    return Sample(d.delivery_id, status, outcome, done - due, done - sent)


async def fire(url: str, deliveries: list[Delivery], rate: float) -> tuple[list[Sample], float]:
    """Send every delivery at its slot (i / rate seconds after the start); (samples, wall s)."""
    # Enough connections that the client never queues: rate × GitHub's 10 s wait at most.
    limits = httpx.Limits(max_connections=int(rate * GITHUB_TIMEOUT_S) + 10,
                          max_keepalive_connections=100)
    async with httpx.AsyncClient(limits=limits, timeout=GITHUB_TIMEOUT_S) as client:
        start = time.perf_counter() + 0.5
        tasks = [_send(client, url, d, start + i / rate) for i, d in enumerate(deliveries)]
        samples = await asyncio.gather(*tasks)
        return list(samples), time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def recorded_ids(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {str(r[0]) for r in conn.execute("SELECT delivery_id FROM deliveries")}


def inbox_ids(inbox: Path) -> set[str]:
    return {p.stem for p in inbox.glob("*.json")}


def settle(work: Path, expected: int, seconds: float = 120.0) -> tuple[int, float]:
    """Wait (bounded) until triage has run for every delivery, each one logging its failure;
    (triage failures logged, seconds waited). Reads only what the log gained since last time."""
    start = time.monotonic()
    failed, partial = 0, b""
    with (work / "app.log").open("rb") as log:
        while time.monotonic() - start < seconds:
            for line in log:
                if not line.endswith(b"\n"):  # still being written; finish it next round
                    partial += line
                    continue
                failed += bool(TRIAGE_FAILED.search((partial + line).decode("utf-8", "replace")))
                partial = b""
            if failed >= expected:
                break
            time.sleep(0.5)
    return failed, round(time.monotonic() - start, 1)


def summarise(samples: list[Sample], wall: float, recorded: set[str], inbox: set[str],
              rate: float) -> dict[str, Any]:
    ok = [s for s in samples if s.status == 202 and s.outcome == "accepted"]
    # Every request counts; one GitHub would have given up on (no answer in 10 s) as infinity.
    sched = [s.from_schedule_s * 1000 if s in ok else math.inf for s in samples]
    send = [s.from_send_s * 1000 if s in ok else math.inf for s in samples]
    sent_ids = {s.delivery_id for s in samples}
    kept = recorded | inbox  # an id only in the inbox is recorded by recover() at the next start
    return {
        "requests": len(samples), "target_rate_per_s": rate,
        "achieved_rate_per_s": round(len(samples) / wall, 1), "accepted_202": len(ok),
        "other_answers": sorted({f"{s.status} {s.outcome}" for s in samples if s not in ok}),
        "latency_ms_from_schedule": _stats(sched), "latency_ms_from_send": _stats(send),
        "not_answered_within_10s": sum(1 for s in samples if s.status == 0),
        "lost": len(sent_ids - kept), "recorded_by_store": len(sent_ids & recorded),
        "left_in_inbox_after_failed_triage": len(sent_ids & inbox),
    }


def _stats(values: list[float]) -> dict[str, float | str]:
    if not values:
        return {}

    def show(value: float) -> float | str:
        return round(value, 2) if math.isfinite(value) else "no 202 within 10 s"

    finite = [v for v in values if math.isfinite(v)]
    return {"p50": show(percentile(values, 50)), "p90": show(percentile(values, 90)),
            "p99": show(percentile(values, 99)), "max": show(max(values)),
            "mean_of_answered": round(statistics.fmean(finite), 2) if finite else "none"}


def machine() -> dict[str, Any]:
    cpu = ""
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        names = (ln.split(":", 1)[1].strip() for ln in handle if ln.startswith("model name"))
        cpu = next(names, "")
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}",
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="deliveries per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to send")
    parser.add_argument("--out", type=Path, default=CACHE / "bench_webhooks.json")
    parser.add_argument("--plain-tracebacks", action="store_true",
                        help="run the app with plain-text exception logs (diagnostic)")
    args = parser.parse_args()
    count = min(MAX_REQUESTS, int(args.rate * args.seconds))
    deliveries = prepare(count)
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
        work = Path(tmp)
        port = free_port()
        proc = start_app(work, port, plain_tracebacks=args.plain_tracebacks)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", proc)
            before = machine()
            samples, wall = asyncio.run(fire(f"http://127.0.0.1:{port}", deliveries, args.rate))
            triage_failed, waited = settle(work, len(deliveries))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        result = summarise(samples, wall, recorded_ids(work / "jobs.sqlite"),
                           inbox_ids(work / "state" / "inbox"), args.rate)
    result["triage_failures_logged"] = triage_failed
    result["seconds_until_triage_caught_up"] = waited
    result["machine"] = before
    result["command"] = " ".join(["benchmarks/bench_webhooks.py", *sys.argv[1:]])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
