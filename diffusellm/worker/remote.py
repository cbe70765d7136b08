"""The remote worker: pulls jobs from the app's worker API over HTTP(S); needs no inbound port."""

from __future__ import annotations

import argparse
import importlib
import ipaddress
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog

from diffusellm.errors import ConfigError, DiffuseLLMError, InputError
from diffusellm.jobs.model import Job
from diffusellm.jobs.wire import (
    AdapterSummary,
    ClaimRequest,
    ClaimResponse,
    EventRequest,
    FinishRequest,
    LearningReport,
    Outcome,
    VerdictsResponse,
    WorkerRef,
)
from diffusellm.learn.commands import adapters, outcome_json
from diffusellm.learn.outcomes import OutcomeStore
from diffusellm.learn.verdicts import sync_forge
from diffusellm.log import configure_logging
from diffusellm.worker.loop import Execute, default_worker_id, run_worker

log = structlog.get_logger(__name__)

API = "/api/worker"
_TOKEN_HINT = "set the worker's token variable to the same value as the app's worker token"


def check_server_url(server_url: str, *, allow_plain_http: bool = False) -> str:
    """`server_url` when the token may travel to it: https anywhere, plain http only to loopback
    (anywhere else the token would cross the network in clear) unless `allow_plain_http` says the
    network is private. ConfigError otherwise."""
    parts = urlsplit(server_url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host:
        return server_url
    if parts.scheme != "http" or not host:
        raise ConfigError(f"the server URL {server_url!r} is not an http(s) URL",
                          hint="pass the app's base URL, e.g. https://bot.example.org")
    if host != "localhost" and not _loopback(host) and not allow_plain_http:
        raise ConfigError(
            f"refusing plain http to {host}: the worker token would cross the network in clear",
            hint="use https:// (TLS at the app's reverse proxy), or http:// only to 127.0.0.1; on a "
                 "private network you control, --allow-plain-http (worker.allow_plain_http)")
    return server_url


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpSource:
    """JobSource over the app's worker API; connection errors are retried with back-off."""

    def __init__(self, server_url: str, token: str, *, poll_timeout_seconds: float = 25.0,
                 retry_base_seconds: float = 1.0, retry_max_seconds: float = 30.0,
                 finish_patience_seconds: float = 600.0, allow_plain_http: bool = False,
                 transport: httpx.BaseTransport | None = None) -> None:
        check_server_url(server_url, allow_plain_http=allow_plain_http)
        if not token:
            raise ConfigError("the remote worker has no token", hint=_TOKEN_HINT)
        self._poll = poll_timeout_seconds
        self._retry_base, self._retry_max = retry_base_seconds, retry_max_seconds
        self._finish_patience = finish_patience_seconds
        self._heartbeat = 20.0
        # The read timeout must outlast the server's long poll.
        timeout = httpx.Timeout(30.0, read=poll_timeout_seconds + 30.0)
        self._client = httpx.Client(
            base_url=server_url.rstrip("/"), headers={"Authorization": f"Bearer {token}"},
            timeout=timeout, transport=transport,
        )

    @property
    def heartbeat_seconds(self) -> float:
        """The interval the app asked for with the last claimed job."""
        return self._heartbeat

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def claim(self, worker_id: str, stop: threading.Event) -> Job | None:
        """Long-poll the app for a job; keeps retrying while the app cannot be reached."""
        body = ClaimRequest(worker_id=worker_id, wait_seconds=self._poll).model_dump()
        response = self._post(f"{API}/claim", body, patience=None, stop=stop)
        if response is None or response.status_code == 204:
            return None
        _check(response, "claim")
        claimed = ClaimResponse.model_validate_json(response.content)
        self._heartbeat = claimed.heartbeat_seconds
        return claimed.job

    def heartbeat(self, job_id: str, worker_id: str) -> bool:
        """Extend the lease; False on 409 (the job is no longer ours)."""
        body = WorkerRef(worker_id=worker_id).model_dump()
        path = f"{API}/jobs/{job_id}/heartbeat"
        return self._lease_call(path, body, self._heartbeat, "heartbeat")

    def add_event(self, job_id: str, worker_id: str, kind: str, message: str,
                  data: Mapping[str, Any] | None) -> bool:
        """Send one progress line; False on 409."""
        body = EventRequest(worker_id=worker_id, kind=kind, message=message,
                            data=dict(data or {})).model_dump(mode="json")
        return self._lease_call(f"{API}/jobs/{job_id}/events", body, self._heartbeat, "event")

    def finish(self, job_id: str, worker_id: str, outcome: Outcome) -> bool:
        """Report the outcome, retrying for a long while: a finished job's result is precious."""
        body = FinishRequest(worker_id=worker_id, outcome=outcome).model_dump(mode="json")
        return self._lease_call(f"{API}/jobs/{job_id}/finish", body, self._finish_patience,
                                "finish")

    def verdicts(self, job_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """(verdict, source) of each job whose pull request was merged or closed."""
        response = self._post("/api/worker/verdicts", {"job_ids": list(job_ids)}, patience=30.0, stop=None)
        if response is None:
            raise ConnectionError(f"asking for verdicts: the app at {self._client.base_url} did not answer")
        _check(response, "asking for verdicts")
        answer = VerdictsResponse.model_validate_json(response.content)
        return {job_id: (v.verdict, v.source) for job_id, v in answer.verdicts.items()}

    def report_learning(self, report: LearningReport) -> bool:
        """Send this worker's learning report for the app's training page; False when the app keeps none
        (an older app, or one that answered with an error: logged, never fatal)."""
        response = self._post(f"{API}/learning", report.model_dump(mode="json"), patience=30.0, stop=None)
        if response is None or response.status_code != 204:
            log.warning("learning report not kept by the app",
                        status=None if response is None else response.status_code)
            return False
        return True

    def _lease_call(self, path: str, body: dict[str, Any], patience: float, what: str) -> bool:
        response = self._post(path, body, patience=patience, stop=None)
        if response is None:
            raise ConnectionError(f"{what}: the app at {self._client.base_url} did not answer")
        if response.status_code == 409:
            return False
        _check(response, what)
        return True

    def _post(self, path: str, body: dict[str, Any], *, patience: float | None,
              stop: threading.Event | None) -> httpx.Response | None:
        """POST, retrying connection errors and 5xx; None when out of patience or stopped."""
        give_up = None if patience is None else time.monotonic() + patience
        delay = self._retry_base
        while stop is None or not stop.is_set():
            try:
                response = self._client.post(path, json=body)
                if response.status_code < 500:
                    return response
                problem = f"HTTP {response.status_code}: {_detail(response)}"
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            log.warning("worker API unreachable, retrying", path=path, error=problem, wait_s=delay)
            if give_up is not None and time.monotonic() + delay > give_up:
                return None
            if stop is not None and stop.wait(delay):
                return None
            if stop is None:
                time.sleep(delay)
            delay = min(delay * 2, self._retry_max)
        return None


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text[:200]


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code in (401, 403):
        raise ConfigError(f"the app refused the worker's token ({what}): {_detail(response)}",
                          hint=_TOKEN_HINT)
    if response.status_code >= 400:
        raise ConfigError(f"{what}: the app answered HTTP {response.status_code}: "
                          f"{_detail(response)}",
                          hint="check that --server points at the diffusellm app")


def load_executor(spec: str) -> Execute:
    """`package.module:factory` → factory(): the zero-argument factory builds the executor."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"--execute {spec!r} is not MODULE:FACTORY",
                          hint="e.g. --execute diffusellm.worker.execute:build_executor")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"--execute {spec!r}: {exc}", hint="name an importable factory") from None
    executor: Execute = factory()
    return executor


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m diffusellm.worker.remote",
                                     description="Pull jobs from a diffusellm app and run them.")
    parser.add_argument("--server", required=True, help="the app's base URL")
    parser.add_argument("--execute", required=True, help="MODULE:FACTORY building the executor")
    parser.add_argument("--token-env", default="DIFFUSELLM_WORKER_TOKEN",
                        help="environment variable holding the worker token")
    parser.add_argument("--worker-id", default=None)
    parser.add_argument("--allow-plain-http", action="store_true",
                        help="send the token over http:// off loopback (a private network only)")
    parser.add_argument("--poll-timeout", type=float, default=25.0)
    parser.add_argument("--max-jobs", type=int, default=None)
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="the worker's state folder: its learning report (adapters, runs by verdict) "
                             "goes to the app at start and after every job")
    parser.add_argument("--adapter", action="append", default=[],
                        help="a LoRA adapter the executor loads (repeatable), for the learning report")
    return parser


def _stop_on_signals(stop: threading.Event) -> None:
    """First SIGTERM/SIGINT: finish the current job, then exit. Second: exit now."""
    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.info("stopping after the current job", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of a worker process; returns the exit code."""
    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        source = HttpSource(args.server, os.environ.get(args.token_env, ""),
                            poll_timeout_seconds=args.poll_timeout,
                            allow_plain_http=args.allow_plain_http)
        execute = load_executor(args.execute)
        worker_id = args.worker_id or default_worker_id()
        after_job = None
        if args.state_dir is not None:
            after_job = LearningSync(source, args.state_dir, worker_id, tuple(args.adapter)).send
            after_job()  # the app's training page shows this worker from its start
        run_worker(source, execute, stop=stop, worker_id=worker_id, max_jobs=args.max_jobs,
                   after_job=after_job)
    except DiffuseLLMError as exc:
        sys.stderr.write(f"diffusellm worker: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []  # pyright: ignore[reportUnknownArgumentType]


def _adapter_summary(record: dict[str, Any]) -> AdapterSummary:
    def number(value: Any) -> float | None:
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    examples, steps = number(record.get("examples")), number(record.get("steps"))
    return AdapterSummary(
        name=Path(str(record.get("adapter", "adapter"))).name or "adapter", date=str(record.get("date", ""))[:64],
        base_model=str(record.get("base_model", ""))[:300],
        examples=None if examples is None else int(examples), steps=None if steps is None else int(steps),
        first_loss=number(record.get("first_loss")), last_loss=number(record.get("last_loss")),
        losses=[number(v) for v in _items(record.get("losses"))[:5000]],
        warnings=[str(w)[:500] for w in _items(record.get("warnings"))[:20]])


def learning_report(state_dir: Path, active_adapters: Sequence[str],
                    worker_id: str | None = None) -> LearningReport:
    """This worker's learning loop as the app's training page shows it: its adapters with their loss
    curves, the adapters it loads, its remembered runs by verdict."""
    return LearningReport(
        worker_id=worker_id or socket.gethostname(), active_adapters=[str(a) for a in active_adapters][:20],
        adapters=[_adapter_summary(r) for r in adapters(state_dir)[:50]],
        verdict_counts=OutcomeStore.in_state(state_dir).counts())


def sync_learning(source: HttpSource, state_dir: Path, active_adapters: Sequence[str],
                  worker_id: str | None = None) -> list[dict[str, Any]]:
    """Take the verdicts the app recorded for this worker's GitHub runs, then send the app this worker's
    learning report (adapters, active adapters, runs by verdict); the runs decided now."""
    decided = sync_forge(OutcomeStore.in_state(state_dir), source.verdicts)
    source.report_learning(learning_report(state_dir, active_adapters, worker_id))
    return [outcome_json(o) for o in decided]


class LearningSync:
    """`sync_learning` as the worker loop runs it after every job: a failure is logged, never fatal
    (the job is done; the next sync catches up)."""

    def __init__(self, source: HttpSource, state_dir: Path, worker_id: str, active_adapters: Sequence[str]) -> None:
        self._source, self._state_dir = source, state_dir
        self._worker_id, self._adapters = worker_id, tuple(active_adapters)

    def send(self) -> None:
        """Sync once."""
        try:
            decided = sync_learning(self._source, self._state_dir, self._adapters, self._worker_id)
        except Exception as exc:  # the app is down or refuses: the job loop goes on
            log.warning("learning sync failed", error=str(exc))
            return
        log.info("learning synced", decided=len(decided))


def sync_server(state_dir: Path, server: str, token: str,
                active_adapters: Sequence[str] = ()) -> list[dict[str, Any]]:
    """`sync_learning` against the app at `server`, once (`diffusellm learn sync --server`)."""
    source = HttpSource(server, token, retry_max_seconds=5.0)
    try:
        return sync_learning(source, state_dir, active_adapters)
    except ConnectionError as exc:
        raise InputError(str(exc), hint="check --server and that the app is running") from None
    finally:
        source.close()


if __name__ == "__main__":
    raise SystemExit(main())
