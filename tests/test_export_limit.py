"""The cap on running exports (movies/export_slots.py) on both servers.

Past the cap an export is refused at once with the same 503 problem and
``Retry-After`` on aioapi and on the Django view; a slot comes back however the
export ends (whole, failed mid-stream, abandoned before or after its first
byte), and HEAD never takes one. An export is held open by :class:`Gate`, which
wraps the real export: it reads and sends its first chunk, then waits on its
thread until the test lets it go on or fail.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from typing import Any, cast

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError
from django.http import StreamingHttpResponse
from django.test import Client

from aioapi.app import create_app
from aioapi.handlers import export as export_handler
from aioapi.keys import BRIDGE, EXPORT_SLOTS
from aioapi.settings import ApiSettings
from movies import export_views
from movies.export import export_chunks
from movies.export_slots import EXPORT_RETRY_AFTER_SECONDS, ExportSlots
from movies.schemas import MovieExportQuery
from tests.api_fixtures import ApiClient, Catalogue, orm
from tests.test_aioapi_health_metrics import samples
from tests.test_aioapi_openapi import check, fetch_document, response_schema
from tests.test_export import ProductionServer, parse_ndjson, read_to_the_break

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # WhiteNoise warns on the Django client's first request when collectstatic has not run.
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

EXPORT = "/api/movies/export"
REFUSED = {
    "type": "about:blank",
    "title": "Service Unavailable",
    "status": 503,
    "detail": "Too many exports are running on this server; retry later.",
}
# Only keeps a broken build from hanging the suite; nothing waits this long.
HANG_GUARD_SECONDS = 30.0


class Gate:
    """Wraps :func:`export_chunks` to hold exports open on their threads.

    Each export reads and yields its first chunk (or, with ``before_first``,
    nothing), then waits until :meth:`open` lets it go on or :meth:`fail` makes
    the database fail under the next one.
    """

    def __init__(self) -> None:
        self.before_first = False
        self.reached = threading.Event()  # an export waits at the gate
        self._opened = threading.Event()
        self._failure: Exception | None = None

    def open(self) -> None:
        self._opened.set()

    def fail(self, error: Exception) -> None:
        self._failure = error
        self._opened.set()

    def __call__(self, query: MovieExportQuery, **kwargs: Any) -> Iterator[bytes]:
        # A generator (the annotation says Iterator): it can be thrown into and closed.
        chunks = cast(Generator[bytes, None, None], export_chunks(query, **kwargs))
        try:
            if not self.before_first:
                yield next(chunks)
            self.reached.set()
            if not self._opened.wait(HANG_GUARD_SECONDS):
                raise TimeoutError("the test never opened the gate")
            failure, self._failure = self._failure, None  # one export fails, later ones run
            if failure is not None:
                chunks.throw(failure)  # raised where the export reads the database
            yield from chunks
        finally:
            chunks.close()


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    held = Gate()
    monkeypatch.setattr(export_handler, "export_chunks", held)
    monkeypatch.setattr(export_views, "export_chunks", held)
    yield held
    held.open()  # never leave a thread waiting (request this fixture after the server)


@pytest.fixture
async def limited(
    aiohttp_client: Callable[..., Awaitable[ApiClient]], api_settings: ApiSettings
) -> ApiClient:
    """aioapi with one export slot, serving as in production (a handler whose client
    leaves is not cancelled, see tests/test_export.py)."""
    settings = api_settings.model_copy(update={"export_max_concurrent": 1})
    return await aiohttp_client(ProductionServer(create_app(settings)))


def app_of(api: ApiClient) -> web.Application:
    assert isinstance(api.server, TestServer)
    return api.server.app


def slots_of(api: ApiClient) -> ExportSlots:
    return app_of(api)[EXPORT_SLOTS]


class LogSeen(logging.Handler):
    """Sets ``seen`` (and keeps ``message``) when the export handler logs ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.INFO)
        self.text = text
        self.message = ""
        self.seen = asyncio.Event()  # the handler logs on the loop's thread

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.message = record.getMessage()
            self.seen.set()


@pytest.fixture
def abandoned() -> Iterator[LogSeen]:
    """Seen once the handler noticed that its client left."""
    logger = logging.getLogger(export_handler.__name__)
    handler, level = LogSeen("export abandoned by the client"), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


async def until_free(slots: ExportSlots) -> None:
    """Wait for every slot to come back after a client left. Nobody is told when
    that happens (the client is gone), so poll; the bound only stops a hang."""
    for _ in range(int(HANG_GUARD_SECONDS / 0.01)):
        if slots.running == 0:
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"{slots.running} export slot(s) never came back")


async def assert_whole_export(api: ApiClient) -> None:
    response = await api.get(EXPORT)
    assert response.status == 200, await response.text()
    _, trailer = parse_ndjson(await response.read())
    assert trailer["_trailer"]["complete"] is True


# --- the setting ------------------------------------------------------------------------


@pytest.mark.parametrize(("threads", "limit"), [(1, 1), (4, 1), (7, 1), (8, 2), (16, 4), (64, 16)])
def test_by_default_exports_may_take_a_quarter_of_the_bridge_threads(
    threads: int, limit: int
) -> None:
    assert ApiSettings(db_threads=threads, db_max_pending=threads).export_limit == limit


@pytest.mark.parametrize(("threads", "value"), [("16", "0"), ("4", "5"), ("16", "some")])
def test_a_limit_outside_one_to_the_threads_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, threads: str, value: str
) -> None:
    monkeypatch.setenv("API_DB_THREADS", threads)
    monkeypatch.setenv("API_EXPORT_MAX_CONCURRENT", value)
    with pytest.raises(ImproperlyConfigured, match="API_EXPORT_MAX_CONCURRENT"):
        ApiSettings.from_env()
    monkeypatch.setenv("API_EXPORT_MAX_CONCURRENT", threads)
    assert ApiSettings.from_env().export_limit == int(threads)


# --- aioapi ---------------------------------------------------------------------------


async def test_past_the_limit_an_export_is_refused_at_once_with_a_problem(
    limited: ApiClient, gate: Gate, catalogue: Catalogue
) -> None:
    held = await limited.get(EXPORT)  # its first chunk sent, its thread at the gate
    assert held.status == 200
    refused = await limited.get(f"{EXPORT}?format=csv")
    assert refused.status == 503
    assert refused.content_type == "application/problem+json"
    assert refused.headers["Retry-After"] == str(EXPORT_RETRY_AFTER_SECONDS)
    assert orjson.loads(await refused.read()) == REFUSED
    assert app_of(limited)[BRIDGE].pending == 1  # the refusal never reached the bridge
    metrics = samples(await (await limited.get("/metrics")).text())
    assert metrics[("api_exports_running", ())] == 1
    assert metrics[("api_exports_max", ())] == 1
    assert metrics[("api_exports_refused_total", ())] == 1
    # The refusal is the 503 the document describes for this endpoint.
    document = await fetch_document(limited)
    content = response_schema(document, EXPORT, "get", 503)
    check(document, content, refused.content_type, await refused.read())

    gate.open()
    _, trailer = parse_ndjson(await held.read())
    assert trailer["_trailer"]["complete"] is True
    # Given back before the end of the body, so the next export is never refused.
    assert slots_of(limited).running == 0
    await assert_whole_export(limited)
    metrics = samples(await (await limited.get("/metrics")).text())
    assert metrics[("api_exports_running", ())] == 0
    assert metrics[("api_exports_refused_total", ())] == 1


async def test_head_takes_no_slot(limited: ApiClient, gate: Gate, catalogue: Catalogue) -> None:
    held = await limited.get(EXPORT)
    assert held.status == 200
    head = await limited.head(f"{EXPORT}?format=csv")
    assert head.status == 200
    assert head.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert slots_of(limited).running == 1
    gate.open()
    await held.read()


async def test_a_failure_mid_stream_gives_the_slot_back(
    limited: ApiClient, gate: Gate, catalogue: Catalogue
) -> None:
    held = await limited.get(EXPORT)
    assert held.status == 200
    gate.fail(OperationalError("server closed the connection unexpectedly"))
    await read_to_the_break(held)
    assert slots_of(limited).running == 0  # given back before the transfer was broken
    await assert_whole_export(limited)


async def test_a_client_that_leaves_mid_stream_gives_the_slot_back(
    limited: ApiClient, gate: Gate, abandoned: LogSeen, catalogue: Catalogue
) -> None:
    held = await limited.get(EXPORT)
    assert held.status == 200
    held.close()
    # Let the export go on only once the handler knows its client is gone, so that
    # this is the path taken (not a whole export written to a dead socket).
    await asyncio.wait_for(abandoned.seen.wait(), HANG_GUARD_SECONDS)
    assert abandoned.message == "export abandoned by the client after 1 chunks"
    gate.open()
    await until_free(slots_of(limited))
    await assert_whole_export(limited)


async def test_a_client_that_leaves_before_the_first_byte_gives_the_slot_back(
    limited: ApiClient, gate: Gate, abandoned: LogSeen, catalogue: Catalogue
) -> None:
    gate.before_first = True
    request = asyncio.create_task(limited.get(EXPORT))
    assert await asyncio.to_thread(gate.reached.wait, HANG_GUARD_SECONDS)
    assert slots_of(limited).running == 1
    request.cancel()  # the client closes its connection
    with pytest.raises(asyncio.CancelledError):
        await request
    await asyncio.wait_for(abandoned.seen.wait(), HANG_GUARD_SECONDS)
    assert abandoned.message == "export abandoned by the client before its first byte"
    gate.open()
    await until_free(slots_of(limited))
    await assert_whole_export(limited)


async def test_the_limit_counts_per_process_not_per_request_kind(
    limited: ApiClient, gate: Gate, catalogue: Catalogue
) -> None:
    """Every format and filter shares the one slot; the rest of the API is untouched."""
    held = await limited.get(f"{EXPORT}?format=json&genre=drama")
    assert held.status == 200
    for query in ("?format=csv", "?format=ndjson&sort=-year", ""):
        assert (await limited.get(f"{EXPORT}{query}")).status == 503
    assert (await limited.get("/api/movies?limit=2")).status == 200
    gate.open()
    assert orjson.loads(await held.read())  # a whole JSON array
    assert slots_of(limited).refused == 3


# --- the Django view, and parity ----------------------------------------------------------


def test_django_refuses_past_the_limit_and_frees_the_slot_on_close(
    client: Client, settings: Any, catalogue: Catalogue
) -> None:
    settings.EXPORT_MAX_CONCURRENT = 1
    slots = export_views.export_slots()
    held = client.get("/movies/export/")  # the first chunk read; the rest waits for the server
    try:
        assert isinstance(held, StreamingHttpResponse)
        assert slots.running == 1
        refused = client.get("/movies/export/?format=csv")
        assert refused.status_code == 503
        assert refused["Content-Type"] == "application/problem+json"
        assert refused["Retry-After"] == str(EXPORT_RETRY_AFTER_SECONDS)
        assert orjson.loads(refused.content) == REFUSED
        head = client.head("/movies/export/?format=csv")
        assert head.status_code == 200  # HEAD takes no slot
        assert head["Content-Type"] == "text/csv; charset=utf-8"
    finally:
        held.close()  # what the WSGI server does however the response ended
    assert slots.running == 0
    whole = client.get("/movies/export/")
    assert isinstance(whole, StreamingHttpResponse)
    body = b"".join(whole.streaming_content)
    assert parse_ndjson(body)[1]["_trailer"]["complete"] is True
    assert slots.running == 0
    assert slots.refused == 1


def test_django_frees_the_slot_after_a_failure_mid_stream(
    client: Client, settings: Any, gate: Gate, catalogue: Catalogue
) -> None:
    settings.EXPORT_MAX_CONCURRENT = 1
    held = client.get("/movies/export/")
    assert isinstance(held, StreamingHttpResponse)
    gate.fail(OperationalError("server closed the connection unexpectedly"))
    with pytest.raises(OperationalError):
        b"".join(held.streaming_content)
    assert export_views.export_slots().running == 0


@pytest.fixture
async def django_refusal(settings: Any) -> AsyncIterator[tuple[bytes, str]]:
    """The Django view's refusal: body and Retry-After, with its one slot held."""
    settings.EXPORT_MAX_CONCURRENT = 1

    def refuse() -> tuple[bytes, str]:
        # One call, so the held export opens and closes on one thread and connection.
        client = Client()
        held = client.get("/movies/export/")
        try:
            refused = client.get("/movies/export/")
            assert refused.status_code == 503
            return refused.content, refused["Retry-After"]
        finally:
            held.close()

    yield await orm(refuse)


async def test_the_refusal_is_byte_identical_on_both_servers(
    limited: ApiClient, gate: Gate, catalogue: Catalogue, django_refusal: tuple[bytes, str]
) -> None:
    held = await limited.get(EXPORT)
    refused = await limited.get(EXPORT)
    assert refused.status == 503
    assert (await refused.read(), refused.headers["Retry-After"]) == django_refusal
    gate.open()
    await held.read()
