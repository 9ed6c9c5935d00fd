"""The ORM bridge: no SQL on the event loop's thread, real concurrency, bounded queue."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

from aioapi.db import THREAD_NAME_PREFIX, BridgeOverloaded, OrmBridge
from tests.api_fixtures import ApiClient, Catalogue, bearer

pytestmark = pytest.mark.django_db(transaction=True)


class QueryThreads:
    """Records the thread of every SQL statement run while ``recording`` is set."""

    def __init__(self, delay: float = 0.0) -> None:
        self.threads: list[str] = []
        self.recording = False
        self.delay = delay
        self._lock = threading.Lock()

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if self.recording:
            with self._lock:
                self.threads.append(threading.current_thread().name)
            # Like a round trip to a distant database; releases the GIL.
            time.sleep(self.delay)
        return execute(sql, params, many, context)

    def install(self, sender: type, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
        if self not in connection.execute_wrappers:
            connection.execute_wrappers.append(self)


@pytest.fixture
def query_threads() -> Iterator[QueryThreads]:
    recorder = QueryThreads()
    connection_created.connect(recorder.install, weak=False)
    try:
        yield recorder
    finally:
        connection_created.disconnect(recorder.install)


async def test_no_sql_runs_on_the_event_loop_thread(
    api: ApiClient, catalogue: Catalogue, writer: tuple[Any, str], query_threads: QueryThreads
) -> None:
    movie = catalogue.movies["Heat"].pk
    person = catalogue.people["Al Pacino"].pk
    cursor_page = await (await api.get("/api/movies?limit=2")).json()
    requests: list[tuple[str, str, dict[str, Any] | None, int]] = [
        ("GET", "/api/movies?genre=drama&sort=-rating", None, 200),
        ("GET", "/api/movies" + cursor_page["next"], None, 200),
        ("GET", f"/api/movies/{movie}", None, 200),
        ("GET", "/api/genres", None, 200),
        ("GET", "/api/people?q=al", None, 200),
        ("GET", f"/api/people/{person}", None, 200),
        ("GET", "/api/movies/export?format=csv", None, 200),
        ("GET", "/readyz", None, 200),
        ("POST", "/api/movies", {"title": "Ronin", "year": 1998, "genres": ["action"]}, 201),
        ("PATCH", f"/api/movies/{movie}", {"rating": 8.3, "credits": []}, 200),
        ("DELETE", f"/api/movies/{movie}", None, 204),
    ]
    query_threads.recording = True
    for method, url, body, status in requests:
        response = await api.request(method, url, json=body, headers=bearer(writer[1]))
        assert response.status == status, (url, await response.text())
    query_threads.recording = False

    loop_thread = threading.current_thread().name
    assert len(query_threads.threads) >= len(requests)
    assert loop_thread not in query_threads.threads
    assert {name.split("_")[0] for name in query_threads.threads} == {THREAD_NAME_PREFIX}


async def test_concurrent_requests_use_several_orm_threads(
    api: ApiClient, catalogue: Catalogue, query_threads: QueryThreads
) -> None:
    query_threads.delay = 0.04
    query_threads.recording = True
    started = time.perf_counter()
    answers = await asyncio.gather(*(api.get(f"/api/movies?limit={n}") for n in range(1, 17)))
    elapsed = time.perf_counter() - started
    query_threads.recording = False
    assert [answer.status for answer in answers] == [200] * 16
    assert len(set(query_threads.threads)) > 1
    # 16 requests x 1 query x 40 ms is 640 ms on one thread; 4 threads overlap them.
    assert elapsed < 0.5


async def test_bridge_refuses_past_its_bound_and_recovers() -> None:
    bridge = OrmBridge(threads=1, max_pending=2)
    release = threading.Event()
    try:
        held = [asyncio.ensure_future(bridge.run(release.wait, 10)) for _ in range(2)]
        await asyncio.sleep(0)
        assert bridge.pending == 2
        with pytest.raises(BridgeOverloaded):
            await bridge.run(time.sleep, 0)
        release.set()
        assert await asyncio.gather(*held) == [True, True]
        assert bridge.pending == 0
        name = await bridge.run(lambda: threading.current_thread().name)
        assert name.startswith(THREAD_NAME_PREFIX)
    finally:
        release.set()
        await asyncio.to_thread(bridge.close)


@pytest.mark.postgres(reason="Django's psycopg connection pool")
async def test_connections_go_back_to_the_pool_after_every_call(
    api: ApiClient, catalogue: Catalogue
) -> None:
    answers = await asyncio.gather(*(api.get("/api/movies?limit=5") for _ in range(40)))
    assert {answer.status for answer in answers} == {200}
    pool: Any = connections["default"].pool  # type: ignore[attr-defined]  # PostgreSQL only
    # The test's own thread may hold one; every bridge thread has handed its back
    # (the pool may still be checking a returned connection for a moment).
    for _ in range(100):
        stats = pool.get_stats()
        if stats["pool_size"] - stats.get("pool_available", 0) <= 1:
            break
        await asyncio.sleep(0.02)
    assert stats["pool_size"] - stats.get("pool_available", 0) <= 1, stats
    assert stats["requests_num"] >= 40
    assert connection.vendor == "postgresql"
