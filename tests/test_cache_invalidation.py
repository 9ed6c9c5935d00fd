"""The response cache kept fresh across processes.

The proof of the issue: two real ``python -m aioapi`` workers on the test
database, their caches warm, a film edited in the Django admin; both must serve
the new bodies within 100 ms of the commit, and no answer to a request sent
later than that may be stale. Then the cache inside one app: keys, 304s, the
byte bound, no thread hop on a hit, a reconnect. Last, the SQLite fallback.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models.signals import post_save
from django.test import Client
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from aioapi.app import create_app
from aioapi.db import OrmBridge
from aioapi.keys import CACHE
from aioapi.listener import APPLICATION_NAME
from aioapi.response_cache import ResponseCache
from aioapi.settings import ApiSettings
from movies.admin import versions
from movies.changes import CHANNEL
from movies.models import Movie
from tests.api_fixtures import ApiClient, Catalogue, bearer, build_catalogue, json_of, orm
from tests.ports import free_port

REPO = Path(__file__).resolve().parent.parent
WINDOW = 0.100  # seconds after the commit by which every worker must serve the change
NOTIFY = pytest.mark.postgres(reason="LISTEN/NOTIFY")
AppClient = Callable[..., Awaitable[ApiClient]]


# --- two real workers ---------------------------------------------------------------


def database_url() -> str:
    """The test database (pytest-django has renamed it by now), as a URL."""
    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    port: int

    def get(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def metric(self, name: str) -> float:
        _, body = self.get("/metrics")
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                if sample.name == name:
                    return float(sample.value)
        raise KeyError(name)


def start_worker() -> Worker:
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": database_url(),
        "API_CACHE": "1",
        "API_ACCESS_LOG": "off",
        "API_DB_THREADS": "4",
        "DB_POOL_MIN_SIZE": "1",
        "DB_POOL_MAX_SIZE": "4",
    }
    command = [sys.executable, "-m", "aioapi", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE)
    worker = Worker(process, port)
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, "the worker exited during start-up"
        try:
            if worker.metric("api_cache_online") == 1:
                return worker
        except OSError:
            pass
        assert time.monotonic() < deadline, "the worker's cache did not come online"
        time.sleep(0.05)


@pytest.fixture
def workers(transactional_db: None) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    try:
        started += [start_worker(), start_worker()]
        yield started
    finally:
        for worker in started:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in started:
            worker.process.wait(timeout=20)
            assert worker.process.stderr is not None
            errors = worker.process.stderr.read().decode()
            worker.process.stderr.close()
            assert "Traceback" not in errors, errors
            assert worker.process.returncode == 0, errors


@dataclass
class Seen:
    started: float
    body: bytes


@dataclass(eq=False)  # a thread must stay hashable
class Poller(threading.Thread):
    """GETs one path of one worker as fast as it answers, recording every answer."""

    worker: Worker
    path: str
    seen: list[Seen] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        super().__init__(daemon=True)

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.worker.port, timeout=5)
        try:
            while not self.done.is_set():
                started = time.monotonic()
                conn.request("GET", self.path)
                response = conn.getresponse()
                body = response.read()
                assert response.status == 200, body
                self.seen.append(Seen(started, body))
        finally:
            conn.close()


@pytest.fixture
def static_root(settings: Any, tmp_path: Path) -> None:
    # WhiteNoise, in the admin's middleware, warns when STATIC_ROOT does not exist.
    settings.STATIC_ROOT = tmp_path


def admin_form(movie: Movie, title: str, genre_ids: list[int]) -> dict[str, Any]:
    """The change form of ``movie`` as the admin page would post it; credits untouched."""
    return {
        "title": title, "synopsis": movie.synopsis, "genres": genre_ids,
        "year": str(movie.year), "release_date": str(movie.release_date or ""),
        "runtime_minutes": str(movie.runtime_minutes or ""),
        "rating": "" if movie.rating is None else str(movie.rating),
        "wikipedia_slug": movie.wikipedia_slug, "poster_url": movie.poster_url,
        "credits-TOTAL_FORMS": "0", "credits-INITIAL_FORMS": "0",
        "credits-MIN_NUM_FORMS": "0", "credits-MAX_NUM_FORMS": "1000",
        "version": versions.version_of(movie.pk),
    }  # fmt: skip


@NOTIFY
@pytest.mark.usefixtures("static_root")
def test_an_admin_edit_reaches_every_worker_within_100_ms(
    workers: list[Worker], admin_client: Client
) -> None:
    catalogue = build_catalogue()
    heat = catalogue.movies["Heat"]
    pacino = catalogue.people["Al Pacino"]
    western = catalogue.genres["western"]
    new_title = "Heat (director's cut)"

    def titles(body: bytes) -> list[str]:
        return [film["title"] for film in orjson.loads(body)["items"]]

    def western_count(body: bytes) -> int:
        counts = {g["slug"]: g["movie_count"] for g in orjson.loads(body)["items"]}
        return int(counts["western"])

    # path -> whether a body shows the edit
    checks: dict[str, Callable[[bytes], bool]] = {
        f"/api/movies/{heat.pk}": lambda body: orjson.loads(body)["title"] == new_title,
        "/api/movies?limit=10": lambda body: new_title in titles(body),
        f"/api/people/{pacino.pk}": lambda body: (
            new_title in [credit["movie"]["title"] for credit in orjson.loads(body)["filmography"]]
        ),
        "/api/genres": lambda body: western_count(body) == 1,
    }
    pollers = [Poller(worker, path) for worker in workers for path in checks]
    for poller in pollers:
        poller.start()
    time.sleep(0.5)  # every cache is warm: the pollers are being served from memory
    hits_before = [worker.metric("api_cache_hits_total") for worker in workers]
    assert all(hits > 100 for hits in hits_before), hits_before

    committed: list[float] = []

    def on_save(instance: Movie, **_: Any) -> None:
        if instance.pk == heat.pk:
            transaction.on_commit(lambda: committed.append(time.monotonic()))

    post_save.connect(on_save, sender=Movie, dispatch_uid="test-commit-time")
    try:
        genre_ids = [genre.pk for genre in heat.genres.all()] + [western.pk]
        url = reverse("admin:movies_movie_change", args=[heat.pk])
        response = admin_client.post(url, admin_form(heat, new_title, genre_ids))
    finally:
        post_save.disconnect(dispatch_uid="test-commit-time")
    assert response.status_code == 302
    assert len(committed) == 1
    commit = committed[0]
    time.sleep(0.5)
    for poller in pollers:
        poller.done.set()
    for poller in pollers:
        poller.join(timeout=10)

    for poller in pollers:
        is_new = checks[poller.path]
        label = f"worker :{poller.worker.port} {poller.path}"
        before = [seen for seen in poller.seen if seen.started < commit - 0.05]
        assert before and not any(is_new(seen.body) for seen in before), label
        late = [seen for seen in poller.seen if seen.started > commit + WINDOW]
        assert len(late) > 10, f"{label}: too few requests after the window"
        stale = [round(seen.started - commit, 4) for seen in late if not is_new(seen.body)]
        assert not stale, f"{label}: stale answers to requests sent {stale} s after the commit"
        first_new = min(seen.started for seen in poller.seen if is_new(seen.body))
        last_old = max(seen.started for seen in poller.seen if not is_new(seen.body))
        print(
            f"{label}: requests sent from {first_new - commit:+.4f} s after the commit "
            f"got the new body; the last old one was sent at {last_old - commit:+.4f} s"
        )
    # The edit went through the cache, not around it: hits went on after it.
    assert all(
        worker.metric("api_cache_hits_total") > hits
        for worker, hits in zip(workers, hits_before, strict=True)
    )
    assert all(worker.metric("api_cache_invalidations_total") >= 4 for worker in workers)


# --- the cache inside one app ----------------------------------------------------------


@pytest.fixture
async def cached_api(
    aiohttp_client: AppClient, api_settings: ApiSettings, catalogue: Catalogue
) -> ApiClient:
    settings_ = api_settings.model_copy(update={"cache": True})
    api = await aiohttp_client(create_app(settings_))
    await until(lambda: cache_of(api).online, "the cache comes online")
    return api


def app_of(api: ApiClient) -> web.Application:
    assert api.app is not None
    return api.app


def cache_of(api: ApiClient) -> ResponseCache:
    return app_of(api)[CACHE]


async def until(condition: Callable[[], bool], what: str, seconds: float = 5.0) -> float:
    """Wait for ``condition``; return how long it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.002)
    return time.monotonic() - started


@NOTIFY
async def test_equivalent_queries_share_one_entry(cached_api: ApiClient) -> None:
    cache = cache_of(cached_api)
    first = await cached_api.get("/api/movies?limit=10&sort=title")
    body = await first.read()
    for url in ("/api/movies?sort=title&limit=10", "/api/movies?limit=10&sort=title&offset=0"):
        again = await cached_api.get(url)
        assert again.status == 200
        assert await again.read() == body
        assert again.headers["ETag"] == first.headers["ETag"]
    assert (cache.misses, cache.hits, len(cache)) == (1, 2, 1)
    await cached_api.get("/api/movies?limit=11&sort=title")
    assert len(cache) == 2


@NOTIFY
async def test_a_hit_needs_no_orm_thread(
    aiohttp_client: AppClient, api_settings: ApiSettings, catalogue: Catalogue
) -> None:
    bridge = OrmBridge(threads=1, max_pending=1)
    api = await aiohttp_client(
        create_app(api_settings.model_copy(update={"cache": True}), bridge=bridge)
    )
    await until(lambda: cache_of(api).online, "the cache comes online")
    heat = catalogue.movies["Heat"].pk
    urls = [f"/api/movies/{heat}", "/api/movies?limit=3", "/api/genres", "/api/people"]
    warm = {url: await (await api.get(url)).read() for url in urls}
    release = threading.Event()
    blocker = asyncio.ensure_future(bridge.run(release.wait, 10))
    await asyncio.sleep(0.01)
    try:
        assert bridge.pending == 1  # its only thread is taken, and no call may wait
        for url, body in warm.items():
            response = await api.get(url)
            assert (response.status, await response.read()) == (200, body)
        assert (await api.get("/api/movies?limit=4")).status == 503  # a miss needs the thread
    finally:
        release.set()
        await blocker


@NOTIFY
async def test_conditional_requests_get_304_from_the_cache(cached_api: ApiClient) -> None:
    cache = cache_of(cached_api)
    # A cold cache and a client that already holds the body: 304, and the cache is filled.
    plain = await cached_api.get("/api/genres")
    etag = plain.headers["ETag"]
    cache.clear()
    revalidated = await cached_api.get("/api/genres", headers={"If-None-Match": etag})
    assert revalidated.status == 304
    assert revalidated.headers["ETag"] == etag
    assert len(cache) == 1
    hit = await cached_api.get("/api/genres", headers={"If-None-Match": f'"other", {etag}'})
    assert (hit.status, hit.headers["ETag"], cache.hits) == (304, etag, 1)
    assert hit.headers["Cache-Control"] == plain.headers["Cache-Control"]
    full = await cached_api.get("/api/genres", headers={"If-None-Match": '"other"'})
    assert full.status == 200
    assert await full.read() == await plain.read()


@NOTIFY
async def test_only_200_answers_are_kept(cached_api: ApiClient) -> None:
    cache = cache_of(cached_api)
    for url, status in [
        ("/api/movies/999999", 404),
        ("/api/people/0", 404),
        ("/api/movies?limit=0", 400),
        ("/api/movies?cursor=garbage", 400),
        ("/api/movies/export?format=csv", 200),  # not a cached route
    ]:
        response = await cached_api.get(url)
        await response.read()
        assert response.status == status, url
    assert len(cache) == 0


@NOTIFY
async def test_api_writes_are_seen_at_once_by_the_next_read(
    cached_api: ApiClient, catalogue: Catalogue, writer: tuple[Any, str]
) -> None:
    heat = catalogue.movies["Heat"].pk
    url = f"/api/movies/{heat}"
    assert (await json_of(await cached_api.get(url)))["rating"] is None
    cache = cache_of(cached_api)
    dropped = cache.invalidations
    patched = await cached_api.patch(url, json={"rating": 8.3}, headers=bearer(writer[1]))
    assert patched.status == 200
    waited = await until(lambda: cache.invalidations > dropped, "the change arrives", WINDOW)
    after = await cached_api.get(url)
    assert (await json_of(after))["rating"] == 8.3
    assert after.headers["ETag"] == patched.headers["ETag"]
    assert waited < WINDOW


async def metric_samples(api: ApiClient) -> dict[str, float]:
    """Every sample of ``GET /metrics``, by name."""
    text = await (await api.get("/metrics")).text()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@NOTIFY
async def test_the_byte_bound_holds_and_metrics_say_so(
    aiohttp_client: AppClient, api_settings: ApiSettings, catalogue: Catalogue
) -> None:
    settings_ = api_settings.model_copy(update={"cache": True, "cache_max_bytes": 4000})
    api = await aiohttp_client(create_app(settings_))
    await until(lambda: cache_of(api).online, "the cache comes online")
    for limit in range(1, 9):
        assert (await api.get(f"/api/movies?limit={limit}")).status == 200
    cache = cache_of(api)
    assert cache.bytes <= 4000
    assert cache.evictions > 0
    samples = await metric_samples(api)
    assert samples["api_cache_max_bytes"] == 4000
    assert samples["api_cache_bytes"] == cache.bytes
    assert samples["api_cache_evictions_total"] == cache.evictions
    assert samples["api_cache_misses_total"] == 8
    assert samples["api_cache_online"] == 1
    assert samples["api_changes_listening"] == 1


@NOTIFY
async def test_the_listener_reconnects_and_starts_from_an_empty_cache(
    cached_api: ApiClient, catalogue: Catalogue
) -> None:
    cache = cache_of(cached_api)
    heat = catalogue.movies["Heat"]
    url = f"/api/movies/{heat.pk}"
    await cached_api.get(url)
    await cached_api.get("/api/genres")
    assert len(cache) == 2
    flushes = cache.flushes

    def kill_listener() -> int:
        # What a database restart does to the listener's session.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s AND datname = current_database()",
                [APPLICATION_NAME],
            )
            return len(cursor.fetchall())

    assert await orm(kill_listener) == 1
    await until(lambda: not cache.online, "the cache goes offline")
    # Offline, the cache serves nothing: answers come from the database.
    hits = cache.hits
    assert (await cached_api.get(url)).status == 200
    assert cache.hits == hits
    await until(lambda: cache.online, "the listener reconnects")
    assert cache.flushes == flushes + 1
    assert len(cache) == 0
    # And invalidation works on the new connection.
    await cached_api.get(url)

    def rename() -> None:
        heat.title = "Heat (1995)"
        heat.save()

    await orm(rename)
    await until(lambda: len(cache) == 0, "the change arrives", WINDOW)
    assert (await json_of(await cached_api.get(url)))["title"] == "Heat (1995)"


@NOTIFY
async def test_a_malformed_notification_empties_the_cache_and_is_counted(
    cached_api: ApiClient, catalogue: Catalogue
) -> None:
    cache = cache_of(cached_api)
    await cached_api.get(f"/api/movies/{catalogue.movies['Heat'].pk}")
    assert len(cache) == 1

    def notify_garbage() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, "not a change"])

    await orm(notify_garbage)
    await until(lambda: len(cache) == 0, "the malformed payload empties the cache")
    assert (await metric_samples(cached_api))["api_changes_malformed_total"] == 1


# --- SQLite -----------------------------------------------------------------------------

SQLITE_ONLY = pytest.mark.sqlite


@SQLITE_ONLY
def test_sqlite_turns_the_cache_off_and_refuses_it_on(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ApiSettings.from_env().cache is False
    monkeypatch.setenv("API_CACHE", "1")
    with pytest.raises(ImproperlyConfigured, match="API_CACHE=1 needs PostgreSQL"):
        ApiSettings.from_env()


@SQLITE_ONLY
@pytest.mark.django_db(transaction=True)
async def test_on_sqlite_every_read_sees_the_last_commit(
    aiohttp_client: AppClient, api_settings: ApiSettings
) -> None:
    # Even asked for, the cache does not run without NOTIFY.
    api = await aiohttp_client(create_app(api_settings.model_copy(update={"cache": True})))
    assert CACHE not in app_of(api)
    catalogue = await orm(build_catalogue)
    heat = catalogue.movies["Heat"]
    url = f"/api/movies/{heat.pk}"
    assert (await json_of(await api.get(url)))["title"] == "Heat"

    def rename() -> None:
        heat.title = "Heat (1995)"
        heat.save()

    await orm(rename)
    assert (await json_of(await api.get(url)))["title"] == "Heat (1995)"
