"""Overload against a real process: past its bounded queue aioapi sheds load at once.

aioapi runs under Gunicorn (deploy/gunicorn_api.conf.py, one worker) on the
throw-away cluster of tests/live.py with one ORM thread, at most two pending ORM
calls, and a simulated database round trip long enough that a burst of requests
finds the queue full. Those past the bound must get 503 with Retry-After at once,
not wait their turn; the rest are served, and so is everything after the burst.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest

from tests.live import Reply, Server, Stack, fetch

LATENCY_MS = 500  # per query: a list takes a few of them
BURST = 24
BUSY = {
    "type": "about:blank",
    "title": "Service Unavailable",
    "status": 503,
    "detail": "The server is busy; try again shortly.",
}


@pytest.fixture(scope="module")
def api(live_stack: Stack) -> Iterator[Server]:
    server = live_stack.api(
        "overload-api",
        API_DB_THREADS="1",
        API_DB_MAX_PENDING="2",
        SIMULATED_DB_LATENCY_MS=str(LATENCY_MS),
        # The latency injector is the bench's (bench/contenders), installed by its settings.
        DJANGO_SETTINGS_MODULE="bench.settings",
    )
    yield server
    server.stop()


def test_past_the_bounded_queue_requests_are_shed_with_503_at_once(api: Server) -> None:
    # Distinct URLs, so that no answer can come from a cache.
    paths = [f"/api/movies?limit=5&offset={index}" for index in range(BURST)]
    with ThreadPoolExecutor(max_workers=BURST) as pool:
        replies = list(pool.map(lambda path: fetch(api.port, path, timeout=60), paths))
    served = [reply for reply in replies if reply.status == 200]
    shed = [reply for reply in replies if reply.status == 503]
    assert len(served) + len(shed) == BURST, [reply.status for reply in replies]
    assert 1 <= len(served) <= 4 and len(shed) >= BURST - 4
    for reply in shed:
        assert reply.headers["Retry-After"] == "1"
        assert reply.headers["Content-Type"] == "application/problem+json"
        assert orjson.loads(reply.body) == BUSY
    # Shedding costs no database round trip; being served costs several.
    assert max(reply.seconds for reply in shed) < LATENCY_MS / 1000
    assert min(reply.seconds for reply in served) >= LATENCY_MS / 1000
    after: Reply = fetch(api.port, "/api/movies?limit=5")
    assert after.status == 200
    slowest_shed = max(reply.seconds for reply in shed)
    print(f"\noverload: {len(shed)} of {BURST} shed with 503 within {slowest_shed:.3f} s")
