"""Prometheus metrics of the API: the whole server's requests, this process's gauges.

Each app gets its own ``CollectorRegistry`` (not the library's global one), so
several apps in one test process never collide. Gauges of the bridge, of the
connection pool and of the exports are read when scraped, never kept up to date
by hand; they are the scraped process's.

Under Gunicorn a scrape reaches one worker, so the request counters and
histograms use prometheus-client's multiprocess mode: with
``PROMETHEUS_MULTIPROC_DIR`` set (deploy/gunicorn_api.conf.py sets it, empty, for
its workers) every worker writes its values to files there and a scrape sums
them all (:func:`multiprocess`); a worker that exits keeps its counts. Without
it (``python -m aioapi``, tests) they live in this process only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from django.db import connections
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from aioapi.db import OrmBridge
from movies import prepared
from movies.export_slots import ExportSlots

LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
# psycopg_pool's get_stats() keys exported as gauges (they are counters since
# start-up or current levels; the names say which).
POOL_STATS = (
    "pool_min", "pool_max", "pool_size", "pool_available", "requests_waiting",
    "requests_num", "requests_queued", "requests_wait_ms", "requests_errors",
    "usage_ms", "connections_num", "connections_ms", "connections_errors",
    "connections_lost", "returns_bad",
)  # fmt: skip


class Metrics:
    """The request counters and histograms (aioapi.middlewares' metrics_middleware
    counts each answer in them), plus scrape-time gauges."""

    def __init__(self, bridge: OrmBridge, exports: ExportSlots) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # Multiprocess: the values go to files, read back for every worker by one
        # collector; registered as well, they would be listed twice.
        shared = multiprocess()
        own = None if shared else self.registry
        if shared:
            MultiProcessCollector(self.registry)
        labels = ("method", "route", "status")
        self.requests = Counter(
            "api_http_requests",
            "HTTP requests answered, by route template and status.",
            labels,
            registry=own,
        )
        self.latency = Histogram(
            "api_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and status.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=own,
        )
        self.registry.register(_BridgeCollector(bridge))
        self.registry.register(_ExportCollector(exports))
        self.registry.register(_StatementCollector(prepared.STATEMENTS))


def multiprocess() -> bool:
    """Whether prometheus-client keeps its values in ``PROMETHEUS_MULTIPROC_DIR``'s files.

    The library decides when first imported; the variable is set before (by the
    Gunicorn config, in the master, inherited by every worker).
    """
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class _BridgeCollector(Collector):
    def __init__(self, bridge: OrmBridge) -> None:
        self.bridge = bridge

    def collect(self) -> Iterator[Metric]:
        gauges: dict[str, tuple[str, float]] = {
            "api_db_bridge_pending": ("ORM calls waiting or running.", self.bridge.pending),
            "api_db_bridge_threads": ("ORM threads of the bridge.", self.bridge.threads),
            "api_db_bridge_max_pending": (
                "ORM calls accepted before the bridge answers 503.",
                self.bridge.max_pending,
            ),
            "api_db_breaker_open": (
                "1 while the database is known down and ORM calls are refused at once.",
                float(self.bridge.breaker.open),
            ),
        }
        for name, (documentation, value) in gauges.items():
            yield GaugeMetricFamily(name, documentation, value=value)
        breaker = self.bridge.breaker
        yield CounterMetricFamily(
            "api_db_breaker_opened", "Times the breaker found the database down.",
            value=breaker.opened,
        )  # fmt: skip
        yield CounterMetricFamily(
            "api_db_breaker_refused", "ORM calls refused at once while the breaker was open.",
            value=breaker.refused,
        )  # fmt: skip
        for key, value in pool_stats().items():
            yield GaugeMetricFamily(
                f"api_db_pool_{key}", f"psycopg pool statistic {key}.", value=value
            )


class _ExportCollector(Collector):
    def __init__(self, exports: ExportSlots) -> None:
        self.exports = exports

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "api_exports_running", "Exports streaming now.", value=self.exports.running
        )
        yield GaugeMetricFamily(
            "api_exports_max",
            "Exports allowed at once (API_EXPORT_MAX_CONCURRENT).",
            value=self.exports.limit,
        )
        yield CounterMetricFamily(
            "api_exports_refused",
            "Exports answered 503 because the limit was reached.",
            value=self.exports.refused,
        )


def pool_stats() -> dict[str, float]:
    """The default database's connection pool statistics; empty when not pooled."""
    # The pool object is shared by every thread's wrapper; reading its counters
    # runs no SQL and takes only the pool's own lock.
    pool: Any = getattr(connections["default"], "pool", None)
    if pool is None:
        return {}
    stats = pool.get_stats()
    return {key: float(stats.get(key, 0)) for key in POOL_STATS}


class _StatementCollector(Collector):
    def __init__(self, statements: prepared.StatementCache) -> None:
        self.statements = statements

    def collect(self) -> Iterator[Metric]:
        counters = {
            "hits": "Reads served by an already compiled statement.",
            "misses": "Reads whose query shape had no compiled statement.",
            "compiles": "Query shapes built and compiled to SQL.",
            "evictions": "Compiled statements dropped to stay within the bound.",
        }
        for name, documentation in counters.items():
            yield CounterMetricFamily(
                f"api_prepared_statements_{name}",
                documentation,
                value=getattr(self.statements, name),
            )
        yield GaugeMetricFamily(
            "api_prepared_statements", "Compiled statements held now.", value=len(self.statements)
        )
        yield GaugeMetricFamily(
            "api_prepared_statements_max",
            "Compiled statements held at most (PREPARED_STATEMENTS_MAX).",
            value=self.statements.max_size,
        )
