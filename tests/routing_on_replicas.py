"""Routing checks that need the replica alias: run only by the child pytest
that ``tests/test_routers.py::test_router_on_two_real_databases`` starts with
``DATABASE_REPLICA_URLS`` set. The file name does not match ``test_*.py``, so the
ordinary runs never collect it (and never show it as skipped).

The "replica" is a second PostgreSQL database with the same schema, not a
streaming standby: a row written to one is not copied to the other, which is
what makes the routing visible.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.core.signals import request_started
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.http import HttpRequest, JsonResponse
from django.test import Client, override_settings
from django.urls import path

from movies.models import Genre
from mymoviedb import replication, routers

REPLICA = "replica_0"

pytestmark = pytest.mark.skipif(
    REPLICA not in settings.DATABASES, reason="run only with DATABASE_REPLICA_URLS set"
)
two_databases = pytest.mark.django_db(databases=[DEFAULT_DB_ALIAS, REPLICA], transaction=True)


@pytest.fixture(autouse=True)
def close_replica_monitor() -> Iterator[None]:
    """The monitor's connection to the replica would keep its test database from being dropped."""
    yield
    replication.monitor.close()


def _seed() -> None:
    """One genre in each database, written by explicit alias (no routing)."""
    Genre.objects.using(DEFAULT_DB_ALIAS).create(name="Only on primary", slug="primary")
    Genre.objects.using(REPLICA).create(name="Only on replica", slug="replica")
    routers.reset()


def _visible() -> list[str]:
    return [genre.slug for genre in Genre.objects.all()]


def probe(request: HttpRequest) -> JsonResponse:
    """A request that reads, writes, then reads again."""
    before = _visible()
    Genre.objects.create(name=f"Written {request.GET['n']}", slug=f"written-{request.GET['n']}")
    after = _visible()
    return JsonResponse({"before": before, "after": after})


urlpatterns = [path("probe/", probe)]


@two_databases
def test_reads_go_to_the_replica_and_writes_to_the_primary() -> None:
    _seed()
    assert _visible() == ["replica"]
    Genre.objects.create(name="New", slug="new")
    assert sorted(Genre.objects.using(DEFAULT_DB_ALIAS).values_list("slug", flat=True)) == [
        "new",
        "primary",
    ]
    assert list(Genre.objects.using(REPLICA).values_list("slug", flat=True)) == ["replica"]
    # A read after the write in the same request sees the write.
    assert _visible() == ["new", "primary"]


@two_databases
def test_each_django_request_starts_on_the_replica(tmp_path: Path) -> None:
    _seed()
    # Whitenoise (in the middleware) wants an existing STATIC_ROOT.
    with override_settings(ROOT_URLCONF=__name__, STATIC_ROOT=tmp_path):
        client = Client()
        first = client.get("/probe/", {"n": 1})
        second = client.get("/probe/", {"n": 2})
    assert first.status_code == 200
    assert first.json() == {"before": ["replica"], "after": ["primary", "written-1"]}
    # Same thread, next request (as a gthread worker reuses its threads):
    # request_started forgets the previous request's write.
    assert second.json() == {
        "before": ["replica"],
        "after": ["primary", "written-1", "written-2"],
    }


@two_databases
def test_pin_stays_in_its_thread_and_request_scope() -> None:
    _seed()
    Genre.objects.create(name="New", slug="new")
    assert routers.is_pinned()
    seen_by_other_thread: list[list[str]] = []

    def other_request() -> None:
        seen_by_other_thread.append(_visible())
        connections.close_all()

    other = threading.Thread(target=other_request)
    other.start()
    other.join()
    assert seen_by_other_thread == [["replica"]]
    with routers.request_scope():
        assert _visible() == ["replica"]
    assert _visible() == ["new", "primary"]
    request_started.send(sender=None)
    assert _visible() == ["replica"]


@two_databases
def test_reads_inside_a_transaction_use_the_primary() -> None:
    _seed()
    with transaction.atomic():
        assert _visible() == ["primary"]
    assert not routers.is_pinned()
    assert _visible() == ["replica"]


@two_databases
async def test_aiohttp_requests_through_the_bridge_are_isolated() -> None:
    """Each aiohttp request is a task; the bridge (channels, thread_sensitive=False,
    as aioapi.db uses it) carries the pin from one ORM call to the next."""
    await database_sync_to_async(_seed, thread_sensitive=False)()
    writer_saw_own_write = asyncio.Event()

    async def writing_request() -> list[str]:
        def write() -> None:
            Genre.objects.create(name="New", slug="new")

        await database_sync_to_async(write, thread_sensitive=False)()
        after = await database_sync_to_async(_visible, thread_sensitive=False)()
        writer_saw_own_write.set()
        return after

    async def reading_request() -> list[str]:
        await writer_saw_own_write.wait()
        return await database_sync_to_async(_visible, thread_sensitive=False)()

    after_write, other = await asyncio.gather(
        asyncio.create_task(writing_request()), asyncio.create_task(reading_request())
    )
    assert after_write == ["new", "primary"]
    assert other == ["replica"]


@two_databases
def test_relations_across_primary_and_replica_are_allowed() -> None:
    _seed()
    router = routers.ReplicaRouter()
    assert router.replicas == [REPLICA]
    primary_row = Genre.objects.using(DEFAULT_DB_ALIAS).get()
    replica_row = Genre.objects.get()
    assert replica_row._state.db == REPLICA
    assert router.allow_relation(primary_row, replica_row) is True
    assert router.allow_migrate(REPLICA, "movies") is None


class EveryReplicaServes:
    """Eight replicas that do not exist cannot be measured: each is declared recent."""

    def serves(self, alias: str, *, min_lsn: int | None, max_lag_seconds: float) -> bool:
        return True


def test_a_request_sticks_to_one_replica_until_it_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routers, "monitor", EveryReplicaServes())
    router = routers.ReplicaRouter()
    router.replicas = [f"replica_{index}" for index in range(8)]
    chosen: set[str] = set()
    for _ in range(20):
        with routers.request_scope():
            reads = {router.db_for_read(Genre) for _ in range(10)}
            assert len(reads) == 1
            chosen |= reads
            assert router.db_for_write(Genre) == DEFAULT_DB_ALIAS
            assert router.db_for_read(Genre) == DEFAULT_DB_ALIAS
    # Requests spread over the replicas (all 20 draws from 8 equal: p = 8**-19).
    assert len(chosen) > 1


@two_databases
def test_a_token_past_the_replica_reads_from_the_primary() -> None:
    """The stand-in replica is another database of the same server, so it reports the
    primary's own WAL position: a token beyond it can only be served by the primary."""
    _seed()
    now = replication.primary_lsn()
    with routers.request_scope(min_lsn=now):
        assert _visible() == ["replica"]
    with routers.request_scope(min_lsn=now + (1 << 40)):
        assert _visible() == ["primary"]
    assert replication.parse_lsn(replication.format_lsn(now)) == now
    assert replication.parse_lsn("16/B374D848") == 0x16_B374D848
    assert replication.parse_lsn("16/") is None
