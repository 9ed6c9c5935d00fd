"""Simulated database round trip: with ``SIMULATED_DB_LATENCY_MS`` set, every SQL
statement sleeps that long before it runs, on whichever server executes it (the Django
views and aioapi's bridge alike). The sleep releases the GIL, as waiting on a socket
would; it holds a connection and a thread, but it is not a network."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

VARIABLE = "SIMULATED_DB_LATENCY_MS"


def install(environ: Mapping[str, str] = os.environ) -> None:
    """Hook a waiting ``execute_wrapper`` into every connection when a latency is set."""
    raw = environ.get(VARIABLE, "") or "0"
    try:
        seconds = float(raw) / 1000.0
    except ValueError:
        raise ImproperlyConfigured(f"{VARIABLE}={raw!r} is not a number of milliseconds.") from None
    if seconds <= 0:
        return

    def wait(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        time.sleep(seconds)
        return execute(sql, params, many, context)

    def add_wrapper(sender: type, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
        # connection_created fires on every new (or pooled) connection of the same
        # wrapper object: add the wrapper once per wrapper object.
        if wait not in connection.execute_wrappers:
            connection.execute_wrappers.append(wait)

    # weak=False: the closure has no other reference to keep it alive.
    connection_created.connect(add_wrapper, weak=False, dispatch_uid="bench.simulated_latency")
