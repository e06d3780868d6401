"""Prometheus metrics of the gateway and the scheduler (``prometheus_client``).

Every metric is declared here once, named and labelled after the Prometheus conventions
(``core_`` prefix, ``_total`` counters, ``_seconds`` histograms, label values taken from the
pipeline's own names, so the label sets are bounded: never an event or job id). The hot path
binds its label children once (:func:`child`) and then only calls ``inc`` / ``observe`` on
them; with ``metrics.enabled = false`` those children are no-ops.

The backlog gauge is not updated by the data path: a scrape reads it from the store's
``job_state`` summary (:meth:`backlog`), at most once per :data:`BACKLOG_SECONDS`.

Several processes serving one port (or sharing one scrape) use ``prometheus_client``'s
multiprocess mode: set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before the
processes start; :func:`render` then aggregates the files of every process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from hookspecs import BacklogStore

__all__ = [
    "BACKLOG",
    "BACKLOG_SECONDS",
    "BROKER_RECONNECTS",
    "CLAIM_RECOVERIES",
    "CONTENT_TYPE",
    "EVENTS_INGESTED",
    "JOBS_TRANSITIONED",
    "LEASES_HELD",
    "LOAD_DURATION",
    "LOOP_LAG",
    "LOOP_STALLS",
    "PUBLISH_FAILURES",
    "REQUEST_DURATION",
    "child",
    "enable",
    "enabled",
    "render",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Seconds a backlog read from the store is reused by the next scrapes.
BACKLOG_SECONDS = 5.0

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LOADS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)

EVENTS_INGESTED = Counter(
    "core_events_ingested_total", "Events received by the gateway, by outcome (stored, rejected, duplicate).",
    ["source", "trigger", "outcome"],
)
REQUEST_DURATION = Histogram(
    "core_gateway_request_duration_seconds", "Time from an HTTP trigger's request to its answer.",
    ["source", "trigger", "code"], buckets=_LATENCY,
)
JOBS_TRANSITIONED = Counter(
    "core_jobs_transitioned_total", "Job transitions recorded by the scheduler, by the state reached.",
    ["destination", "action", "state"],
)
LOAD_DURATION = Histogram(
    "core_load_duration_seconds", "Time an action's load took (one queue of jobs).",
    ["destination", "action"], buckets=_LOADS,
)
PUBLISH_FAILURES = Counter(
    "core_realtime_publish_failures_total",
    "Realtime announcements the broker did not take (the gateway tries again for a few seconds; "
    "then their jobs wait for the schedule).",
    ["service"],
)
CLAIM_RECOVERIES = Counter(
    "core_claim_recoveries_total", "Jobs found executing past their claim lease and recovered.",
)
TRANSITIONS_REFUSED = Counter(
    "core_transitions_refused_total",
    "Job transitions the store refused: the job had moved on (e.g. recovered after its claim lease ran out).",
)
BROKER_RECONNECTS = Counter(
    "core_broker_reconnects_total", "Connections to the pub/sub broker made again after one was lost or failed.",
    ["broker"],
)
LEASES_HELD = Gauge(
    "core_leases_held", "Supervisor leases this process holds (1) or waits for (0), by kind of work.",
    ["kind", "name"], multiprocess_mode="livesum",
)

LOOP_LAG = Gauge(
    "core_event_loop_lag_seconds", "Seconds the scheduler's event loop has not answered (0 while it runs freely).",
    multiprocess_mode="max",
)
LOOP_STALLS = Counter(
    "core_event_loop_stalls_total",
    "Times the scheduler's event loop was blocked past scheduler.load_timeout (a load running synchronous code).",
)


class _Noop:
    """A label child that does nothing: metrics are off."""

    __slots__ = ()

    def inc(self, amount: float = 1) -> None:
        pass

    def dec(self, amount: float = 1) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def observe(self, value: float) -> None:
        pass


_NOOP = _Noop()
_enabled = True


class Child(Protocol):
    """What the data path calls on a bound metric."""

    def inc(self, amount: float = 1) -> None: ...


def enable(on: bool) -> None:
    """Turn the data path's updates on or off (``metrics.enabled``); bind children after this."""
    global _enabled
    _enabled = on


def enabled() -> bool:
    """Whether metrics are updated and served."""
    return _enabled


def child(metric: Any, *labels: str) -> Any:
    """The label child of ``metric`` for ``labels``, bound once by the caller; a no-op when off."""
    if not _enabled:
        return _NOOP
    return metric.labels(*labels) if labels else metric


class BacklogSource(Protocol):
    """A store that can count its unfinished jobs from its summary (optional in the protocol)."""

    async def backlog(self) -> Mapping[tuple[str, str, str], int]: ...


class _Backlog(Collector):
    """``core_jobs_backlog``: unfinished jobs by destination, action and status, as last read."""

    def __init__(self) -> None:
        self.counts: Mapping[tuple[str, str, str], int] = {}
        self.read_at = float("-inf")

    async def refresh(self, store: object, *, now: float | None = None) -> None:
        """Read the store's summary again unless the last read is recent enough."""
        now = time.monotonic() if now is None else now
        if not isinstance(store, BacklogStore) or now - self.read_at < BACKLOG_SECONDS:
            return
        self.read_at = now
        self.counts = await store.backlog()

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "core_jobs_backlog", "Unfinished jobs in the store by destination, action and status "
            f"(read from the store's summary at most every {BACKLOG_SECONDS:g}s).",
            labels=["destination", "action", "status"],
        )
        for (destination, action, status), count in sorted(self.counts.items()):
            family.add_metric([destination, action, status], count)
        yield family


BACKLOG = _Backlog()
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    REGISTRY.register(BACKLOG)


def render() -> bytes:
    """The text exposition of every metric (every process's, in multiprocess mode)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return generate_latest(REGISTRY)
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    registry.register(BACKLOG)
    return generate_latest(registry)
