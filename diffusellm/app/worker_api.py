"""The worker API (/api/worker/*): workers claim jobs by long poll, heartbeat, report and finish."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from diffusellm.app.limits import WORKER_BODY_BYTES, json_too_deep, too_deep_detail
from diffusellm.app.metrics import Metrics, metrics
from diffusellm.app.reports import save_report
from diffusellm.jobs.store import MonitoredJobStore
from diffusellm.jobs.wire import (
    ClaimRequest,
    ClaimResponse,
    EventRequest,
    FinishRequest,
    FinishResponse,
    HeartbeatResponse,
    LearningReport,
    Verdict,
    VerdictsRequest,
    VerdictsResponse,
    WorkerRef,
)


@dataclass(frozen=True)
class WorkerApiConfig:
    """What the worker API needs: the token (None disables the API) and the lease timing."""

    token: str | None
    token_env: str
    lease_seconds: float
    heartbeat_seconds: float
    poll_seconds: float = 1.0
    """How often a long-polling claim looks at the store again."""
    reports_dir: Path | None = None
    """Where workers' learning reports are kept (app/reports); None: the app keeps none."""


def _refusal(config: WorkerApiConfig, authorization: str | None) -> JSONResponse | None:
    """None when `authorization` carries the worker token; else the 503 or 401 to answer."""
    if config.token is None:
        detail = (f"the worker API is disabled: no worker token is configured; set the environment "
                  f"variable {config.token_env} on the app (and the same value on each worker)")
        return JSONResponse({"detail": detail}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    scheme, _, given = (authorization or "").partition(" ")
    # compare_digest: the time taken does not tell an attacker how much of a guess was right.
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             config.token.encode()):
        return JSONResponse({"detail": "missing or wrong worker token"},
                            status_code=status.HTTP_401_UNAUTHORIZED,
                            headers={"WWW-Authenticate": "Bearer"})
    return None


def _token_first(config: WorkerApiConfig) -> type[APIRoute]:
    """A route class that checks the worker token before any byte of the body is read, then
    refuses JSON nested deeper than MAX_JSON_DEPTH (400) before FastAPI parses it."""

    class TokenFirstRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def checked(request: Request) -> Response:
                refusal = _refusal(config, request.headers.get("authorization"))
                if refusal is not None:
                    return refusal
                body = await request.body()  # capped by the route's max_body_size (413)
                if await anyio.to_thread.run_sync(json_too_deep, body):
                    return JSONResponse({"detail": too_deep_detail()}, status_code=400)
                return await handler(request)

            return checked

    return TokenFirstRoute


def _not_yours(job_id: str, worker_id: str) -> HTTPException:
    return HTTPException(
        status.HTTP_409_CONFLICT,
        f"job {job_id} is not running under worker {worker_id}: it was reaped after its lease "
        f"expired, cancelled, or finished already; drop it",
    )


def worker_router(store: MonitoredJobStore, config: WorkerApiConfig,
                  counters: Metrics | None = None) -> APIRouter:
    """The /api/worker routes, all behind the worker token."""
    seen = counters or metrics()
    router = APIRouter(prefix="/api/worker", tags=["worker"], route_class=_token_first(config),
                       max_body_size=WORKER_BODY_BYTES)

    @router.post("/claim", response_model=ClaimResponse,
                 responses={204: {"description": "no job became claimable while waiting"}})
    async def claim(body: ClaimRequest, request: Request) -> Response:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + body.wait_seconds
        while True:
            job = await anyio.to_thread.run_sync(store.claim, body.worker_id, config.lease_seconds)
            if job is not None:
                seen.claims.labels(via="http").inc()
                answer = ClaimResponse(job=job, lease_seconds=config.lease_seconds,
                                       heartbeat_seconds=config.heartbeat_seconds)
                return Response(answer.model_dump_json(), media_type="application/json")
            remaining = deadline - loop.time()
            if remaining <= 0 or await request.is_disconnected():
                return Response(status_code=status.HTTP_204_NO_CONTENT)
            await asyncio.sleep(min(config.poll_seconds, remaining))

    @router.post("/jobs/{job_id}/heartbeat")
    def heartbeat(job_id: str, body: WorkerRef) -> HeartbeatResponse:
        if not store.heartbeat(job_id, body.worker_id, config.lease_seconds):
            raise _not_yours(job_id, body.worker_id)
        return HeartbeatResponse(lease_seconds=config.lease_seconds)

    @router.post("/jobs/{job_id}/events", status_code=status.HTTP_204_NO_CONTENT)
    def add_event(job_id: str, body: EventRequest) -> None:
        if not store.holds_lease(job_id, body.worker_id):
            raise _not_yours(job_id, body.worker_id)
        store.add_event(job_id, body.kind, body.message, body.data)

    @router.post("/jobs/{job_id}/finish")
    def finish(job_id: str, body: FinishRequest) -> FinishResponse:
        outcome = body.outcome
        if not store.finish(job_id, body.worker_id, outcome.store_state(), result=outcome.result,
                            error=outcome.error):
            raise _not_yours(job_id, body.worker_id)
        job = store.get(job_id)
        state = job.state if job is not None else outcome.store_state()
        seen.finished.labels(state=state.value).inc()
        return FinishResponse(state=state)

    @router.post("/verdicts")
    def verdicts(body: VerdictsRequest) -> VerdictsResponse:
        found: dict[str, Verdict] = {}
        for job_id in dict.fromkeys(body.job_ids):
            job = store.get(job_id)
            result = job.result if job is not None else {}
            if result.get("verdict") in ("accepted", "rejected"):
                found[job_id] = Verdict(verdict=result["verdict"], source=str(result.get("verdict_source", "")))
        return VerdictsResponse(verdicts=found)

    @router.post("/learning", status_code=status.HTTP_204_NO_CONTENT)
    def learning(body: LearningReport) -> None:
        if config.reports_dir is None:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "this app keeps no learning reports")
        save_report(config.reports_dir, body)

    return router
