"""The app server: the FastAPI app with worker API, routers, health, metrics, reaper and worker."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import os
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import anyio.to_thread
import structlog
import uvicorn
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector

from diffusellm.app.limits import DEFAULT_BODY_BYTES, BodyDeadline
from diffusellm.app.metrics import CONTENT_TYPE, JobStateCollector, Metrics, exposition, metrics
from diffusellm.app.settings import ServerSettings, StoreSettings
from diffusellm.app.worker_api import WorkerApiConfig, worker_router
from diffusellm.errors import ConfigError
from diffusellm.jobs.model import Job
from diffusellm.jobs.store import MonitoredJobStore
from diffusellm.worker.loop import Execute, StoreSource, run_worker

__all__ = ["EmbeddedWorker", "Hook", "Metrics", "create_app", "metrics", "serve"]

log = structlog.get_logger(__name__)

Hook = Callable[[], Awaitable[None] | None]


class Service(Protocol):
    """Something the app runs beside its routes, started after start-up and stopped at shutdown."""

    def start(self) -> None:
        """Start (returns at once: the port is bound after this)."""
        ...

    def stop(self) -> None:
        """Stop; may wait a little."""
        ...
_WORKER_STOP_WAIT_S = 30.0


class EmbeddedWorker:
    """The worker thread inside the app (single-box installs): runs jobs straight from the store."""

    def __init__(self, store: MonitoredJobStore, execute: Execute, settings: StoreSettings,
                 counters: Metrics) -> None:
        def count(_job: Job) -> None:
            counters.claims.labels(via="in_process").inc()

        self._stop = threading.Event()
        source = StoreSource(store, lease_seconds=settings.lease_seconds,
                             heartbeat_seconds=settings.heartbeat_seconds, on_claim=count)
        self._thread = threading.Thread(
            target=run_worker, name="diffusellm-embedded-worker", daemon=True,
            args=(source, execute), kwargs={"stop": self._stop, "worker_id": None},
        )

    def start(self) -> None:
        """Start pulling jobs."""
        self._thread.start()

    def stop(self, wait_seconds: float = _WORKER_STOP_WAIT_S) -> bool:
        """Ask the worker to stop after its current job; False if it is still busy after the wait.

        A job still running then is abandoned: its lease expires and the reaper re-queues it.
        """
        self._stop.set()
        self._thread.join(wait_seconds)
        return not self._thread.is_alive()


async def _call_hooks(hooks: Sequence[Hook]) -> None:
    for hook in hooks:
        outcome = hook()
        if inspect.isawaitable(outcome):
            await outcome


PRUNE_EVERY_SECONDS = 3600.0


async def _reap_forever(store: MonitoredJobStore, timing: StoreSettings, counters: Metrics) -> None:
    """Every reap interval, re-queue (or bury) running jobs whose worker went silent; every hour,
    forget webhook delivery ids older than `delivery_days`."""
    pruned_at = -PRUNE_EVERY_SECONDS
    while True:
        try:
            reaped = await anyio.to_thread.run_sync(store.reap_expired)
        except Exception:  # the database may be back next round
            log.exception("reaper failed")
        else:
            if reaped:
                counters.reaped.inc(len(reaped))
                log.warning("reaped jobs whose lease expired", job_ids=reaped)
        if time.monotonic() - pruned_at >= PRUNE_EVERY_SECONDS:
            pruned_at = time.monotonic()
            await _prune(store, dt.timedelta(days=timing.delivery_days))
        await asyncio.sleep(timing.reap_interval_seconds)


async def _prune(store: MonitoredJobStore, older_than: dt.timedelta) -> None:
    try:
        forgotten = await anyio.to_thread.run_sync(store.prune_deliveries, older_than)
    except Exception:  # next hour, then
        log.exception("pruning webhook deliveries failed")
    else:
        log.info("pruned webhook deliveries", forgotten=forgotten, older_than_days=older_than.days)


def _health_and_metrics(app: FastAPI, store: MonitoredJobStore, counters: Metrics,
                        collectors: Sequence[Collector]) -> None:
    per_app = CollectorRegistry(auto_describe=True)
    per_app.register(JobStateCollector(store.count_by_state))
    for collector in collectors:
        per_app.register(collector)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> JSONResponse:
        try:
            await anyio.to_thread.run_sync(store.ping)
        except Exception as exc:
            detail = f"job store unreachable: {type(exc).__name__}"
            return JSONResponse({"status": "unavailable", "detail": detail}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", tags=["ops"])
    async def prometheus_metrics() -> Response:
        body = await anyio.to_thread.run_sync(exposition, counters.registry, per_app)
        return Response(body, media_type=CONTENT_TYPE)


def create_app(*, store: MonitoredJobStore, server: ServerSettings,
               store_settings: StoreSettings | None = None, routers: Sequence[APIRouter] = (),
               execute: Execute | None = None, on_startup: Sequence[Hook] = (),
               on_shutdown: Sequence[Hook] = (), environ: Mapping[str, str] | None = None,
               counters: Metrics | None = None, reports_dir: Path | None = None,
               services: Sequence[Service] = (), collectors: Sequence[Collector] = ()) -> FastAPI:
    """The app: worker API, `routers`, /healthz, /metrics, the reaper and (optionally) a worker.

    `execute` runs jobs in the embedded worker; it is required when server.in_process_worker.
    `services` start after the `on_startup` hooks without being waited for (uvicorn binds the
    port once start-up returns); `collectors` add metrics read at scrape time.
    Tokens are read here, once, from the environment variables the settings name; workers' learning
    reports are kept in `reports_dir`.
    """
    timing = store_settings or StoreSettings()
    seen = counters or metrics()
    if server.in_process_worker and execute is None:
        raise ConfigError("server.in_process_worker is on but no executor was given",
                          hint="pass execute=..., or set server.in_process_worker: false and run "
                               "`python -m diffusellm.worker.remote` workers")
    env = dict(os.environ if environ is None else environ)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncGenerator[None]:
        await _call_hooks(on_startup)
        for service in services:
            service.start()
        reaper = asyncio.create_task(_reap_forever(store, timing, seen))
        worker = None
        if execute is not None and server.in_process_worker:
            worker = EmbeddedWorker(store, execute, timing, seen)
            worker.start()
        try:
            yield
        finally:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
            if worker is not None and not await anyio.to_thread.run_sync(worker.stop):
                log.warning("embedded worker still busy at shutdown; its job will be reaped")
            for service in services:
                await anyio.to_thread.run_sync(service.stop)
            await _call_hooks(on_shutdown)

    app = FastAPI(title="diffuseLLM agent", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json" if server.openapi else None,
                  max_body_size=DEFAULT_BODY_BYTES)
    app.add_middleware(BodyDeadline, seconds=server.body_timeout_seconds)
    api = WorkerApiConfig(token=server.worker_token(env), token_env=server.worker_token_env,
                          lease_seconds=timing.lease_seconds,
                          heartbeat_seconds=timing.heartbeat_seconds, reports_dir=reports_dir)
    app.include_router(worker_router(store, api, seen))
    for router in routers:
        app.include_router(router)
    _health_and_metrics(app, store, seen, collectors)
    return app


CLAIM_PATH = "/api/worker/claim"


class LongPollShutdown:
    """ASGI wrapper: when the server starts to shut down, an open claim long poll is answered
    `204` (nothing claimed) at once instead of being cancelled mid-way (a 500 and a traceback)."""

    def __init__(self, app: Any, stopping: asyncio.Event) -> None:
        self.app, self.stopping = app, stopping

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != CLAIM_PATH or self.stopping.is_set():
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        call = asyncio.ensure_future(self.app(scope, receive, tracked))
        stop = asyncio.ensure_future(self.stopping.wait())
        await asyncio.wait({call, stop}, return_when=asyncio.FIRST_COMPLETED)
        if call.done():
            stop.cancel()
            call.result()
            return
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await call
        if not started:
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})


class _Server(uvicorn.Server):
    """uvicorn's server, telling LongPollShutdown as soon as it is asked to exit."""

    def __init__(self, config: uvicorn.Config, stopping: asyncio.Event) -> None:
        super().__init__(config)
        self._stopping = stopping

    def handle_exit(self, sig: int, frame: Any) -> None:
        self._stopping.set()
        super().handle_exit(sig, frame)


def serve(app: FastAPI, server: ServerSettings, **uvicorn_options: Any) -> None:
    """Run the app with uvicorn on server.host:server.port until interrupted.

    On shutdown open claim long polls are answered `204` at once (the workers simply poll
    again); other requests get a grace period of 5 s. X-Forwarded-For / -Proto are believed only
    from the addresses in server.forwarded_allow_ips (none by default, not even loopback).
    """
    proxies = list(server.forwarded_allow_ips)
    options: dict[str, Any] = {"timeout_graceful_shutdown": 5, "proxy_headers": bool(proxies),
                               "forwarded_allow_ips": proxies}
    options.update(uvicorn_options)
    stopping = asyncio.Event()
    config = uvicorn.Config(LongPollShutdown(app, stopping), host=server.host, port=server.port, **options)
    _Server(config, stopping).run()
