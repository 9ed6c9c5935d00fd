"""A database that refuses connections: aioapi answers 503 at once, then recovers.

aioapi/db.py's breaker: once a probe finds the primary down, every request that
needs the database is refused at once (a 503 problem with Retry-After) instead
of waiting out a connect or pool timeout, ``/api/events`` says so too, and
``/metrics`` shows it. Against a real server and a cluster of the test's own
(tests/live.py), which the test stops and starts again.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
from django.db import OperationalError, connection

from aioapi.db import OrmBridge
from mymoviedb.reconnect import lost_connection
from tests.live import Reply, Stack, fetch

CLIENTS = 50
REQUESTS = 200
# Each request used to wait for its own connect (seconds under 50 connections
# with the pool): refused at once, it takes a few milliseconds.
MAX_MEDIAN_SECONDS = 0.2
MAX_SECONDS_TO_RECOVER = 5.0
UNAVAILABLE = {
    "type": "about:blank",
    "title": "Service Unavailable",
    "status": 503,
    "detail": "The database is unavailable; try again shortly.",
}


def breaker_open(port: int) -> float:
    exposition = fetch(port, "/metrics").body
    match = re.search(rb"^api_db_breaker_open (\S+)$", exposition, re.M)
    assert match is not None, exposition[:2000]
    return float(match[1])


def assert_unavailable(reply: Reply) -> None:
    assert reply.status == 503, reply.body[:300]
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert reply.headers["Retry-After"] == "5"
    assert orjson.loads(reply.body) == UNAVAILABLE


@pytest.mark.parametrize("pool", ["0", "1"], ids=["connection-per-thread", "pool"])
def test_a_down_database_is_refused_at_once_and_recovery_is_quick(
    live_stack: Stack, pool: str
) -> None:
    # DB_POOL=1: the pool's 2 s checkout wait is the slow case the breaker removes;
    # DB_POOL=0 (the API's default): a connect attempt per request and thread.
    server = live_stack.api(f"outage-api-{pool}", DB_POOL=pool, DB_POOL_MIN_SIZE="1")
    port = server.port
    try:
        assert fetch(port, "/api/movies?limit=2").status == 200
        assert breaker_open(port) == 0
        live_stack.cluster.stop("immediate")
        try:
            # Before anything else has found it down, a new event stream says so.
            assert_unavailable(fetch(port, "/api/events", timeout=5))
            # The first requests find it down; from then on the breaker is open.
            deadline = time.monotonic() + 20
            while breaker_open(port) != 1:
                assert time.monotonic() < deadline, "the breaker never opened"
                fetch(port, "/api/movies?limit=2")
                time.sleep(0.05)
            paths = ["/api/movies?limit=2", "/api/genres", "/api/movies/1"] * (REQUESTS // 3)
            with ThreadPoolExecutor(CLIENTS) as clients:
                replies = list(clients.map(lambda path: fetch(port, path), paths))
            for reply in replies:
                assert_unavailable(reply)
            median = statistics.median(reply.seconds for reply in replies)
            assert median < MAX_MEDIAN_SECONDS, f"median {median:.3f} s"
            events = fetch(port, "/api/events", timeout=5)
            assert_unavailable(events)
            ready = fetch(port, "/readyz")
            assert ready.status == 503 and ready.seconds < MAX_MEDIAN_SECONDS
        finally:
            live_stack.cluster.start()
        restarted = time.monotonic()
        while breaker_open(port) != 0:
            assert time.monotonic() - restarted < MAX_SECONDS_TO_RECOVER, "still open"
            time.sleep(0.05)
        # The pool may hand out a connection broken by the crash once; then 200s.
        reply = fetch(port, "/api/movies?limit=2")
        while reply.status != 200:
            assert time.monotonic() - restarted < MAX_SECONDS_TO_RECOVER, reply.body[:300]
            reply = fetch(port, "/api/movies?limit=2")
        recovered = time.monotonic() - restarted
        print(f"\noutage: median refusal {median * 1000:.1f} ms; recovered in {recovered:.2f} s")
    finally:
        server.stop()
    log = server.output()
    assert "Traceback" not in log, log[-3000:]
    assert "database down" in log and "database back" in log, log[-3000:]


def _cancelled_statement() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 1")
        try:
            cursor.execute("SELECT pg_sleep(1)")
        finally:
            cursor.execute("RESET statement_timeout")


@pytest.mark.postgres(reason="a statement error with a SQLSTATE")
@pytest.mark.django_db(transaction=True)
async def test_a_failed_statement_on_a_live_database_refuses_nothing() -> None:
    # A cancelled query is an OperationalError too, but the server answered it:
    # the breaker neither probes nor opens, and the next call runs.
    bridge = OrmBridge(threads=1, max_pending=4)
    try:
        with pytest.raises(OperationalError, match="statement timeout") as cancelled:
            await bridge.run(_cancelled_statement)
        assert not lost_connection(cancelled.value)
        assert not bridge.breaker.open and bridge.breaker.opened == 0
        await bridge.run(connection.ensure_connection)
    finally:
        await asyncio.to_thread(bridge.close)
