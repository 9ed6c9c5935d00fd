"""Simulated database round trip, for benchmarking a database across a network.

With ``SIMULATED_DB_LATENCY_MS`` set, every SQL statement sleeps that long
before it runs, on whichever server executes it: the same wrapper serves the
Django views and the aiohttp bridge, so the two are slowed identically. The
sleep releases the GIL, as waiting on a real socket would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created


class SimulatedLatency:
    """An ``execute_wrapper`` that waits a fixed round trip before each query."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(
        self,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: dict[str, Any],
    ) -> Any:
        time.sleep(self.seconds)
        return execute(sql, params, many, context)


def _add_wrapper(sender: type, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    # connection_created fires on every new (or pooled) connection of the same
    # wrapper object: add the wrapper once per wrapper object.
    if not any(isinstance(w, SimulatedLatency) for w in connection.execute_wrappers):
        seconds = settings.SIMULATED_DB_LATENCY_MS / 1000.0
        connection.execute_wrappers.append(SimulatedLatency(seconds))


def install() -> None:
    """Hook the wrapper into every connection when a latency is configured."""
    if settings.SIMULATED_DB_LATENCY_MS > 0:
        connection_created.connect(_add_wrapper, dispatch_uid="movies.simulated_latency")
