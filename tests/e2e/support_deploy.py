"""Reliability tests' deployment: GitHub double, the app over uvicorn, remote worker processes."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from fastapi import Response

from diffusellm.app.inbox import SpoolInbox
from diffusellm.app.metrics import Metrics
from diffusellm.app.router import EventRouter
from diffusellm.app.server import create_app
from diffusellm.app.settings import ServerSettings, StoreSettings
from diffusellm.app.triage import TriageContext, register
from diffusellm.app.webhooks import PATH, webhook_router
from diffusellm.forge.github_auth import TRIAGE_PERMISSIONS
from diffusellm.jobs.model import Job
from diffusellm.jobs.store import SqlJobStore
from tests.conftest import make_repo, seed_converted_model
from tests.fakes.github_double import GitHubDouble, app_for, fast_settings
from tests.fakes.github_resources import IssueRec, RepoRec
from tests.fakes.webhook_payloads import delivery, labeled
from tests.jobs.support import AppServer, stored, wait_until

ROOT = Path(__file__).resolve().parents[2]
FAST = StoreSettings(lease_seconds=3.0, heartbeat_seconds=0.5, reap_interval_seconds=0.5,
                     backoff_base_seconds=0)
"""Short leases so a killed worker's job is re-queued within seconds; six heartbeats per lease,
so a live worker on a busy machine keeps its job."""
HOLD_LIMIT_S = 120.0
"""A gate never holds a request longer than this, even if the test forgets to release it."""

FILES = {
    "pyproject.toml": '[project]\nname = "shapes"\nversion = "0.1.0"\n',
    "src/shapes/__init__.py": '"""Shapes."""\n',
    "src/shapes/area.py": (
        '"""Areas of shapes."""\n\n\ndef square_area(side: float) -> float:\n'
        '    """Area of a square."""\n    return side * side\n'
    ),
    "tests/test_area.py": (
        "from shapes.area import square_area\n\n\n"
        "def test_square() -> None:\n    assert square_area(2) == 4\n"
    ),
}
ISSUE_TITLE = "Rename square_area"
ISSUE_BODY = (
    "Please rename it.\r\n\r\n```yaml\r\ntitle: Rename square_area to area_of_square\r\n"
    "operations:\r\n  - op: rename_symbol\r\n    target: shapes.area.square_area\r\n"
    "    new_name: area_of_square\r\n```\r\n"
)


class Gate:
    """Holds the first request that reaches it until the test releases it (or a time limit)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.reached = threading.Event()
        self._open = threading.Event()
        self._armed = True
        self._lock = threading.Lock()

    def hold(self) -> None:
        """Called by the server thread serving the request; only the first call waits."""
        with self._lock:
            if not self._armed:
                return
            self._armed = False
        self.reached.set()
        self._open.wait(HOLD_LIMIT_S)

    def release(self) -> None:
        """Let the held request (and every later one) through."""
        self._open.set()


class GatedStore(SqlJobStore):
    """The real SQL store; a phase event with a gate is recorded, then its request is held."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.phase_gates: dict[str, Gate] = {}

    def add_event(self, job_id: str, kind: str, message: str,
                  data: dict[str, Any] | None = None) -> None:
        super().add_event(job_id, kind, message, data)
        gate = self.phase_gates.get(message) if kind == "phase" else None
        if gate is not None:
            gate.hold()


RequestMatch = Callable[[str, str, bytes], bool]


class GatedDouble(GitHubDouble):
    """The GitHub double; a matching request is served (its effect lands), then its answer held.

    Installation tokens carry `canary` in their value, so a search for it finds them anywhere.
    """

    def __init__(self, root: Path, *, canary: str = "dllmcanary") -> None:
        super().__init__(root)
        self.canary = canary
        self.request_gates: list[tuple[RequestMatch, Gate]] = []

    def handle(self, method: str, path: str, query: str, headers: dict[str, str],
               body: bytes) -> Response:
        reply = super().handle(method, path, query, headers, body)
        for matches, gate in self.request_gates:
            if matches(method, path, body):
                gate.hold()
        return reply

    def mint_token(self, names: list[str], permissions: dict[str, str]) -> dict[str, Any]:
        data = super().mint_token(names, permissions)
        record = self.tokens.pop(data["token"])
        record.value = f"ghs_{self.canary}{record.value.removeprefix('ghs_')[:24]}"
        self.tokens[record.value] = record
        return {**data, "token": record.value}


@dataclass
class Deployment:
    """One app with a GatedStore, one GitHub double with one repository and issue."""

    double: GatedDouble
    repo: RepoRec
    issue: IssueRec
    store: GatedStore
    server: AppServer
    root: Path
    webhook_secret: str
    worker_token: str
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list[subprocess.Popen[bytes]])

    @property
    def state_dir(self) -> Path:
        """The workers' state folder (shared: a restarted worker on the same host)."""
        return self.root / "worker-state"

    def label_issue(self) -> Job:
        """Deliver a signed `issues.labeled` over HTTP; the job triage queued for it."""
        payload = labeled(self.double, self.repo, self.issue, "diffusellm", "maintainer")
        body, headers = delivery("issues", payload, self.webhook_secret)
        answer = httpx.post(f"{self.server.url}{PATH}", content=body, headers=headers, timeout=30)
        assert answer.status_code == 202 and answer.json()["status"] == "accepted", answer.text
        wait_until(lambda: len(self.store.list_jobs()) == 1, 60, "triage to queue the job")
        (job,) = self.store.list_jobs()
        return job

    def write_worker_config(self, **sections: Any) -> Path:
        """The workers' config.yaml: the double as GitHub, no pauses between requests."""
        config: dict[str, Any] = {
            "state_dir": str(self.state_dir), "log_level": "debug",
            # no network in the tests: the checks use the worker's interpreter, not a built environment
            "validation": {"environment": {"build": False}},
            "github": {"base_url": self.double.url, "seconds_between_requests": 0.0,
                       "seconds_between_writes": 0.0, "secondary_rate_wait_s": 1.0},
            **sections,
        }
        path = self.root / "worker-config.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    def start_worker(self, name: str, env: Mapping[str, str], *extra: str
                     ) -> subprocess.Popen[bytes]:
        """`python -m diffusellm.worker.remote` with the production executor factory; its
        stdout and stderr go to `<root>/<name>.log`."""
        command = [sys.executable, "-m", "diffusellm.worker.remote", "--server", self.server.url,
                   "--execute", "diffusellm.worker.execute:build_executor",
                   "--poll-timeout", "1", "--worker-id", name, "--log-level", "debug", *extra]
        seed_converted_model(self.state_dir)
        full_env = {**os.environ, "PYTHONPATH": str(ROOT),
                    "DIFFUSELLM_WORKER_TOKEN": self.worker_token, **env}
        with (self.root / f"{name}.log").open("wb") as out:
            proc = subprocess.Popen(command, cwd=self.root, env=full_env, stdout=out,
                                    stderr=subprocess.STDOUT)
        self.workers.append(proc)
        return proc

    def worker_log(self, name: str) -> str:
        """What a worker wrote to stdout and stderr."""
        return (self.root / f"{name}.log").read_text(encoding="utf-8", errors="replace")

    def wait_for(self, gate: Gate, worker: subprocess.Popen[bytes], name: str) -> None:
        """Until `gate` holds a request of `worker`; fail early (with its log) if it exits."""
        def reached_or_exited() -> bool:
            return gate.reached.is_set() or worker.poll() is not None

        wait_until(reached_or_exited, 180, f"the worker to reach {gate.name}")
        assert gate.reached.is_set(), f"worker exited first:\n{self.worker_log(name)[-4000:]}"

    def job(self, job_id: str) -> Job:
        """The job as stored now."""
        return stored(self.store, job_id)

    def bot_comments(self) -> list[str]:
        """The bot's comments on the issue."""
        return [c.body for c in self.double.comments_on(self.repo, self.issue.number)
                if c.user == self.double.bot_login]

    def git(self, *args: str, cwd: Path | None = None) -> str:
        """A git command in the double's bare repository (or `cwd`); its stdout."""
        where = str(cwd or self.repo.bare)
        return subprocess.run(["git", "-C", where, *args], capture_output=True, text=True,
                              check=True).stdout


def key_pem(double: GitHubDouble, root: Path) -> Path:
    """The double's App key in a .pem file (PRIVATE_KEY_PATH)."""
    path = root / "app-key.pem"
    path.write_text(double.private_key_pem, encoding="utf-8")
    path.chmod(0o600)
    return path


def app_env(double: GitHubDouble, root: Path) -> dict[str, str]:
    """APP_ID and PRIVATE_KEY_PATH for a worker acting as the double's App."""
    return {"APP_ID": str(double.app_id), "PRIVATE_KEY_PATH": str(key_pem(double, root))}


def _app(store: GatedStore, double: GitHubDouble, root: Path, secret: str,
         worker_token: str) -> AppServer:
    """The real app: worker API, signed webhook route with triage, reaper; no embedded worker."""
    options = fast_settings(double)
    triage = app_for(double, options, permissions=TRIAGE_PERMISSIONS)
    events = register(EventRouter(), TriageContext(store=store, settings=options,
                                                   forges=triage.forge))
    hooks = webhook_router(store=store, secret=secret, events=events,
                           inbox=SpoolInbox(root / "inbox"))
    app = create_app(store=store, server=ServerSettings(in_process_worker=False),
                     store_settings=FAST, routers=[hooks],
                     environ={"DIFFUSELLM_WORKER_TOKEN": worker_token}, counters=Metrics())
    return AppServer(app)


@contextlib.contextmanager
def deployment(root: Path, *, files: Mapping[str, str] = FILES, canary: str = "dllmcanary",
               webhook_secret: str = "e2e-secret", worker_token: str = "e2e-worker-token",
               ) -> Generator[Deployment]:
    """Double + repository + issue + app; every worker started is SIGKILLed at the end."""
    double = GatedDouble(root / "github", canary=canary)
    double.start()
    store = GatedStore(f"sqlite:///{root / 'jobs.sqlite'}", backoff_base_seconds=0)
    try:
        src = make_repo(root / "src", files, message="Add area helpers")
        repo = double.add_repo("Codertocat", "Hello-World", src)
        double.set_role(repo, "maintainer", "maintain")
        issue = double.add_issue(repo, ISSUE_TITLE, ISSUE_BODY, "reporter")
        with _app(store, double, root, webhook_secret, worker_token) as server:
            world = Deployment(double, repo, issue, store, server, root, webhook_secret,
                               worker_token)
            try:
                yield world
            finally:
                _stop(world)
    finally:
        double.stop()
        store.close()


def _stop(world: Deployment) -> None:
    for gate in world.store.phase_gates.values():
        gate.release()
    for _, gate in world.double.request_gates:
        gate.release()
    for proc in world.workers:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def json_text(value: Any) -> str:
    """A value as JSON text, for searching."""
    return json.dumps(value, default=str, ensure_ascii=False)
