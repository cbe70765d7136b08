"""Prometheus metrics: webhook deliveries, claims, finished and reaped jobs, jobs by state."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from diffusellm.jobs.model import JobState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The process-wide counters; routers increment them, /metrics exposes them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.webhook_deliveries = Counter(
            "diffusellm_webhook_deliveries", "Webhook deliveries received, by event and outcome "
            "(e.g. outcome=enqueued|ignored|duplicate|rejected)",
            ["event", "outcome"], registry=self.registry,
        )
        self.claims = Counter(
            "diffusellm_job_claims", "Jobs handed to a worker, by how the worker is connected "
            "(via=http|in_process)", ["via"], registry=self.registry,
        )
        self.finished = Counter(
            "diffusellm_jobs_finished", "Attempts ended by a worker, by the job's resulting state",
            ["state"], registry=self.registry,
        )
        self.reaped = Counter(
            "diffusellm_jobs_reaped", "Running jobs whose lease expired (their worker went away)",
            registry=self.registry,
        )


_lock = threading.Lock()
_metrics: list[Metrics] = []


def metrics() -> Metrics:
    """The process's Metrics, created on first use (never at import time)."""
    with _lock:
        if not _metrics:
            _metrics.append(Metrics())
        return _metrics[0]


class JobStateCollector(Collector):
    """Counts jobs by state at scrape time; reports the store as down instead of failing."""

    def __init__(self, count_by_state: Callable[[], dict[JobState, int]]) -> None:
        self._count = count_by_state

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("diffusellm_store_up", "1 when the job store answered the scrape")
        try:
            counts = self._count()
        except Exception:  # a scrape must not fail because the database is down
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = GaugeMetricFamily("diffusellm_jobs", "Jobs in the store, by state", labels=["state"])
        for state in JobState:
            jobs.add_metric([state.value], counts.get(state, 0))
        yield jobs


def exposition(*registries: CollectorRegistry) -> bytes:
    """The Prometheus text format of several registries, one after the other."""
    return b"".join(generate_latest(registry) for registry in registries)
