"""Prometheus metrics: webhook deliveries and their triage, the inbox, claims, finished and reaped jobs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from diffusellm.app.inbox import InboxSummary
from diffusellm.jobs.model import JobState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The process-wide counters; routers increment them, /metrics exposes them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.webhook_deliveries = Counter(
            "diffusellm_webhook_deliveries", "Webhook deliveries received, by event and outcome "
            "(outcome=accepted|ignored|duplicate|rejected)",
            ["event", "outcome"], registry=self.registry,
        )
        self.triage = Counter(
            "diffusellm_webhook_triage", "Triage attempts of stored deliveries, by event and outcome "
            "(outcome=done|retry|dead)", ["event", "outcome"], registry=self.registry,
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


class InboxCollector(Collector):
    """Deliveries waiting in the webhook inbox, by state, and the oldest one's age, at scrape time."""

    def __init__(self, summary: Callable[[], InboxSummary]) -> None:
        self._summary = summary

    def collect(self) -> Iterator[Metric]:
        try:
            found = self._summary()
        except OSError:  # an unreadable folder shows as no sample rather than a failed scrape
            return
        gauge = GaugeMetricFamily("diffusellm_inbox_deliveries", "Webhook deliveries still in the inbox, "
                                  "by state (waiting|retrying|dead)", labels=["state"])
        for state, count in (("waiting", found.waiting), ("retrying", found.retrying), ("dead", found.dead)):
            gauge.add_metric([state], count)
        yield gauge
        yield GaugeMetricFamily("diffusellm_inbox_oldest_seconds", "Age of the oldest delivery in the inbox",
                                value=found.oldest_age_s)


def exposition(*registries: CollectorRegistry) -> bytes:
    """The Prometheus text format of several registries, one after the other."""
    return b"".join(generate_latest(registry) for registry in registries)
