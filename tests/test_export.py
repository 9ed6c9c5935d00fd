"""GET /api/movies/export and /movies/export/: formats, filters, gzip, errors, parity,
and what a client that stops reading, leaves, or meets a failure mid-stream gets."""

from __future__ import annotations

import asyncio
import base64
import csv
import gzip
import io
import itertools
import random
import socket
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import psycopg
import pytest
from aiohttp import ClientPayloadError, ClientResponse, ClientSession, TCPConnector, web
from aiohttp.test_utils import TestServer
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections
from django.http import StreamingHttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext

from aioapi.app import create_app
from aioapi.db import OrmBridge
from aioapi.keys import BRIDGE, EXPORT_SLOTS
from aioapi.settings import ApiSettings
from movies import export
from movies.export import CHUNK_ROWS, COLUMNS, export_chunks
from movies.models import Genre, Movie
from movies.schemas import MovieExportQuery, parse_query
from tests.api_fixtures import ApiClient, Catalogue, json_of, orm

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # WhiteNoise warns on the Django client's first request when collectstatic has not run.
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

MEDIA_TYPES = {
    "ndjson": "application/x-ndjson",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
}
# A title that needs CSV quoting and JSON escaping.
AWKWARD_TITLE = 'Say "cheese",\nthen "#" — ünïcödé'


@pytest.fixture
def api_settings(api_settings: ApiSettings) -> ApiSettings:
    """A slot per thread: these tests are about the stream, and some run exports side
    by side (tests/test_export_limit.py is about the cap)."""
    return api_settings.model_copy(update={"export_max_concurrent": api_settings.db_threads})


def bridge_of(api: ApiClient) -> OrmBridge:
    assert isinstance(api.server, TestServer)
    return api.server.app[BRIDGE]


class ProductionServer(TestServer):
    """Serves as ``web.run_app`` and the Gunicorn worker do: a handler is NOT
    cancelled when its client leaves (aiohttp's TestServer cancels it)."""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        kwargs["handler_cancellation"] = False
        return web.AppRunner(self.app, **kwargs)


@pytest.fixture
async def served(
    aiohttp_client: Callable[..., Awaitable[ApiClient]], api_settings: ApiSettings
) -> ApiClient:
    return await aiohttp_client(ProductionServer(create_app(api_settings)))


def film(movie: Movie) -> dict[str, Any]:
    """A film as the export must write it, built from the saved object."""
    return {
        "id": movie.pk,
        "title": movie.title,
        "year": movie.year,
        "release_date": movie.release_date.isoformat() if movie.release_date else None,
        "runtime_minutes": movie.runtime_minutes,
        "rating": movie.rating,
        "genres": sorted(genre.name for genre in movie.genres.all()),
    }


def expected_films(**filters: Any) -> list[dict[str, Any]]:
    movies = Movie.objects.filter(**filters).order_by("id").prefetch_related("genres")
    return [film(movie) for movie in movies]


def csv_record(item: dict[str, Any]) -> list[str]:
    def cell(value: Any) -> str:
        return "" if value is None else str(value)

    return [*(cell(item[name]) for name in COLUMNS[:-1]), "|".join(item["genres"])]


def parse_ndjson(body: bytes) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The films and the trailer of an NDJSON export (every line must end with a newline)."""
    assert body.endswith(b"\n")
    lines = [orjson.loads(line) for line in body.split(b"\n")[:-1]]
    return lines[:-1], lines[-1]


def parse_csv(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode(), newline="")))


async def get_export(api: ApiClient, query: str = "", **kwargs: Any) -> ClientResponse:
    response = await api.get(f"/api/movies/export{query}", **kwargs)
    assert response.status == 200, await response.text()
    return response


# --- the three formats ----------------------------------------------------------


async def test_ndjson_is_every_film_then_a_complete_trailer(
    api: ApiClient, catalogue: Catalogue
) -> None:
    response = await get_export(api)
    assert response.headers["Content-Type"] == "application/x-ndjson"
    assert response.headers["Content-Disposition"] == 'attachment; filename="movies.ndjson"'
    assert response.headers["Cache-Control"] == "no-store"
    films, trailer = parse_ndjson(await response.read())
    expected = await orm(expected_films)
    assert films == expected
    assert trailer == {"_trailer": {"complete": True, "rows": len(expected)}}


async def test_json_is_one_array_of_every_film(api: ApiClient, catalogue: Catalogue) -> None:
    response = await get_export(api, "?format=json")
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Content-Disposition"] == 'attachment; filename="movies.json"'
    assert await json_of(response) == await orm(expected_films)


async def test_csv_has_a_header_every_film_and_a_complete_record(
    api: ApiClient, catalogue: Catalogue
) -> None:
    response = await get_export(api, "?format=csv")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="movies.csv"'
    body = await response.read()
    assert body.endswith(b"\r\n")  # RFC 4180 line ends
    expected = await orm(expected_films)
    assert parse_csv(body) == [
        list(COLUMNS),
        *(csv_record(item) for item in expected),
        ["#complete", str(len(expected))],
    ]


@pytest.mark.parametrize("fmt", ["ndjson", "json", "csv"])
async def test_nothing_matched_is_still_a_complete_file(
    api: ApiClient, catalogue: Catalogue, fmt: str
) -> None:
    body = await (await get_export(api, f"?format={fmt}&year=1870")).read()
    expected = {
        "ndjson": b'{"_trailer":{"complete":true,"rows":0}}\n',
        "json": b"[]",
        "csv": ",".join(COLUMNS).encode() + b"\r\n#complete,0\r\n",
    }
    assert body == expected[fmt]


def _title(number: int, length: int) -> str:
    # Random letters: long titles that gzip cannot shrink to nothing.
    noise = base64.b64encode(random.Random(number).randbytes(length)).decode()
    return f"Film {number:07d} {noise}"[:length]


def make_films(count: int, *, title_length: int = 40) -> list[Movie]:
    """``count`` films with two genres each, one with an awkward title."""
    action = Genre.objects.get_or_create(slug="action", defaults={"name": "Action"})[0]
    drama = Genre.objects.get_or_create(slug="drama", defaults={"name": "Drama"})[0]
    movies = Movie.objects.bulk_create(
        Movie(
            title=AWKWARD_TITLE if number == 0 else _title(number, title_length),
            year=1900 + number % 120,
            rating=None if number % 7 == 0 else (number % 100) / 10,
            runtime_minutes=None if number % 5 == 0 else 60 + number % 90,
        )
        for number in range(count)
    )
    links = Movie.genres.through
    links.objects.bulk_create(
        itertools.chain.from_iterable(
            [
                links(movie_id=movie.pk, genre_id=drama.pk),
                links(movie_id=movie.pk, genre_id=action.pk),
            ]
            for movie in movies
        )
    )
    return movies


@pytest.mark.parametrize("fmt", ["ndjson", "json", "csv"])
async def test_several_chunks_join_into_one_valid_file(api: ApiClient, fmt: str) -> None:
    count = CHUNK_ROWS * 2 + 17
    await orm(make_films, count)
    body = await (await get_export(api, f"?format={fmt}&sort=id")).read()
    movies = Movie.objects.order_by("id").prefetch_related("genres")
    expected = await orm(lambda: [film(movie) for movie in movies])
    assert len(expected) == count
    assert expected[0]["title"] == AWKWARD_TITLE
    assert expected[1]["genres"] == ["Action", "Drama"]
    if fmt == "ndjson":
        assert parse_ndjson(body) == (expected, {"_trailer": {"complete": True, "rows": count}})
    elif fmt == "json":
        assert orjson.loads(body) == expected
    else:
        records = parse_csv(body)
        assert records[1:-1] == [csv_record(item) for item in expected]
        assert records[-1] == ["#complete", str(count)]


def test_genres_cost_one_query_per_chunk_not_per_film(db: None) -> None:
    make_films(250)
    query = parse_query(MovieExportQuery, [("sort", "id")])
    for chunk_rows in (100, 250):
        with CaptureQueriesContext(connection) as queries:
            body = b"".join(export_chunks(query, chunk_rows=chunk_rows))
        statements = [q["sql"] for q in queries if q["sql"] not in ("BEGIN", "COMMIT")]
        statements = [sql for sql in statements if not sql.startswith("SET TRANSACTION")]
        genre_queries = [sql for sql in statements if "movies_movie_genres" in sql]
        assert len(genre_queries) == -(-250 // chunk_rows)  # ceil
        assert len(statements) == len(genre_queries) + 2  # the genres' names, the films
        assert body.endswith(b'{"_trailer":{"complete":true,"rows":250}}\n')


# --- filters and sort: the list's, applied to the whole catalogue -----------------

FILTERS = [
    "genre=drama&sort=title",
    "genre=science-fiction&sort=-year",
    "year=1984&sort=id",
    "year_min=1980&year_max=1990&sort=rating",
    "sort=-rating",
    "q=Alien&sort=-id",
    "genre=drama&year_min=1990&sort=title",
]


@pytest.mark.parametrize("filters", FILTERS)
async def test_filters_and_sort_select_what_the_list_selects(
    api: ApiClient, catalogue: Catalogue, filters: str
) -> None:
    listed = await json_of(await api.get(f"/api/movies?limit=100&{filters}"))
    films, trailer = parse_ndjson(await (await get_export(api, f"?{filters}")).read())
    assert [item["id"] for item in films] == [item["id"] for item in listed["items"]]
    assert films, "each filter must select some films, or the test proves nothing"
    assert trailer["_trailer"]["rows"] == len(films)


async def test_default_order_is_by_id_not_the_lists_title(
    api: ApiClient, catalogue: Catalogue
) -> None:
    await orm(lambda: Movie.objects.create(title="Aardvark", year=2001))  # last id, first title
    films, _ = parse_ndjson(await (await get_export(api)).read())
    ids = [item["id"] for item in films]
    assert ids == sorted(ids)
    listed = await json_of(await api.get("/api/movies?limit=100"))
    assert ids != [item["id"] for item in listed["items"]]  # else the test proves nothing


async def test_person_filter_exports_their_films(api: ApiClient, catalogue: Catalogue) -> None:
    scott = catalogue.people["Ridley Scott"]
    films, _ = parse_ndjson(await (await get_export(api, f"?person={scott.pk}")).read())
    assert [item["title"] for item in films] == ["Alien", "Blade Runner", "Gladiator"]


# --- errors, HEAD, gzip ------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("?format=xml", ["format"]),
        ("?limit=10", ["limit"]),
        ("?cursor=abc", ["cursor"]),
        ("?year_min=2000&year_max=1990", ["year_min", "year_max"]),
        ("?format=csv&format=json", ["format"]),
        ("?sort=synopsis", ["sort"]),
    ],
)
async def test_bad_parameters_are_a_400_problem_on_both_servers(
    api: ApiClient, client: Client, query: str, names: list[str]
) -> None:
    response = await api.get(f"/api/movies/export{query}")
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    body = await response.read()
    problem = orjson.loads(body)
    assert problem["status"] == 400
    assert [error["name"] for error in problem["errors"]] == names
    django = await orm(client.get, f"/movies/export/{query}")
    assert (django.status_code, django["Content-Type"]) == (400, "application/problem+json")
    assert django.content == body


async def test_head_sends_the_headers_without_reading(api: ApiClient, catalogue: Catalogue) -> None:
    response = await api.head("/api/movies/export?format=csv")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="movies.csv"'
    assert await response.read() == b""


async def test_other_methods_are_not_allowed(api: ApiClient, client: Client) -> None:
    response = await api.post("/api/movies/export")
    assert response.status == 405
    assert "GET" in response.headers["Allow"]
    django = await orm(client.post, "/movies/export/")
    assert django.status_code == 405
    assert django["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
async def test_gzip_when_the_client_accepts_it(
    api: ApiClient, catalogue: Catalogue, fmt: str
) -> None:
    plain = await get_export(api, f"?format={fmt}", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    zipped = await get_export(
        api,
        f"?format={fmt}",
        headers={"Accept-Encoding": "gzip, deflate"},
        auto_decompress=False,
    )
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["Content-Type"] == MEDIA_TYPES[fmt]
    assert gzip.decompress(await zipped.read()) == await plain.read()


async def test_gzip_refused_with_q_zero_is_not_used(api: ApiClient, catalogue: Catalogue) -> None:
    response = await get_export(
        api, headers={"Accept-Encoding": "gzip;q=0, identity"}, auto_decompress=False
    )
    assert "Content-Encoding" not in response.headers


# --- Django parity --------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "?format=json&genre=drama", "?format=csv&sort=-year"])
async def test_django_view_sends_the_same_bytes(
    api: ApiClient, client: Client, catalogue: Catalogue, query: str
) -> None:
    ours = await get_export(api, query, headers={"Accept-Encoding": "identity"})
    body = await ours.read()

    def django_export() -> tuple[int, dict[str, str], bytes]:
        response = client.get(f"/movies/export/{query}")
        assert isinstance(response, StreamingHttpResponse)
        return response.status_code, dict(response.headers), b"".join(response.streaming_content)

    status, headers, django_body = await orm(django_export)
    assert status == 200
    assert django_body == body
    for name in ("Content-Type", "Content-Disposition", "Cache-Control"):
        assert headers[name] == ours.headers[name]


# --- a client that stops reading, or leaves -------------------------------------------

# Small chunks and a client with a small receive buffer: a few thousand films then
# outgrow the queue and every buffer between the producer and the client.
PAUSED_CHUNK_ROWS = 100
PAUSED_FILMS = 20_000


def make_paused_films() -> None:
    make_films(PAUSED_FILMS, title_length=290)


@pytest.fixture
async def slow_client(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ClientSession]:
    """A client with a 16 KiB receive buffer that reads only when the test does."""
    monkeypatch.setattr(export, "CHUNK_ROWS", PAUSED_CHUNK_ROWS)

    def small_buffer(addr_info: Any) -> socket.socket:
        family, kind, proto, _, _ = addr_info
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        return sock

    connector = TCPConnector(socket_factory=small_buffer)
    headers = {"Accept-Encoding": "identity"}
    async with ClientSession(
        connector=connector, headers=headers, auto_decompress=False
    ) as session:
        yield session


async def busy_backends() -> int:
    """Backends of this database, other than ours, inside a transaction or a query."""

    def count() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND (state = 'active' OR xact_start IS NOT NULL)"
            )
            return int(cursor.fetchone()[0])

    return await orm(count)


async def start_paused_export(
    api: ApiClient, client: ClientSession, query: str, encoding: str = "identity"
) -> tuple[ClientResponse, bytes]:
    """An export whose reader took a few bytes and stopped: the producer must block."""
    headers = {"Accept-Encoding": encoding}
    response = await client.get(api.make_url(f"/api/movies/export{query}"), headers=headers)
    assert response.status == 200
    head = await response.content.readexactly(1000)
    bridge = bridge_of(api)
    for _ in range(10):  # the producer fills the queue and the buffers, then waits
        await asyncio.sleep(0.05)
        assert bridge.pending == 1, "the export finished: the catalogue is too small to block it"
    return response, head


def bridge_idle(api: ApiClient) -> Callable[[], Awaitable[bool]]:
    """No ORM call running and no export holding a slot (the next export may start)."""

    async def idle() -> bool:
        assert isinstance(api.server, TestServer)
        return bridge_of(api).pending == 0 and api.server.app[EXPORT_SLOTS].running == 0

    return idle


async def wait_until(condition: Callable[[], Awaitable[bool]], seconds: float) -> None:
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() - started < seconds, f"not done within {seconds} s"
        await asyncio.sleep(0.02)


async def test_a_client_that_leaves_frees_the_thread_and_connection_within_a_second(
    served: ApiClient, slow_client: ClientSession
) -> None:
    await orm(make_paused_films)
    postgresql = connection.vendor == "postgresql"
    baseline = await busy_backends() if postgresql else 0

    async def database_idle() -> bool:
        return await busy_backends() == baseline

    for fmt in ("ndjson", "json", "csv"):
        response, _ = await start_paused_export(served, slow_client, f"?format={fmt}")
        if postgresql:
            assert await busy_backends() == baseline + 1  # the export's transaction, waiting
        response.close()  # the client goes away mid-stream
        await wait_until(bridge_idle(served), 1.0)
        if postgresql:
            await wait_until(database_idle, 1.0)
    # The app still serves: its pool has every connection back.
    assert (await served.get("/api/movies/export?year=1870")).status == 200


# --- a failure mid-stream ---------------------------------------------------------------


async def read_to_the_break(response: ClientResponse) -> bytes:
    """Everything the server sent; the transfer must end without its final chunk."""
    received = bytearray()
    with pytest.raises(ClientPayloadError):
        async for data in response.content.iter_any():
            received += data
    return bytes(received)


TERMINATE_EXPORT = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    " AND xact_start IS NOT NULL"
)


async def kill_the_export_backend() -> None:
    """End the export's database session, as a failover or an operator would."""

    def terminate() -> int:
        with connection.cursor() as cursor:
            cursor.execute(TERMINATE_EXPORT)
            return len(cursor.fetchall())

    assert await orm(terminate) == 1


@pytest.mark.postgres
async def test_a_failure_mid_stream_is_visible_in_every_format(
    served: ApiClient, slow_client: ClientSession
) -> None:
    await orm(make_paused_films)
    for fmt in ("ndjson", "json", "csv"):
        response, head = await start_paused_export(served, slow_client, f"?format={fmt}&sort=id")
        await kill_the_export_backend()
        body = head + await read_to_the_break(response)
        if fmt == "ndjson":
            films, trailer = parse_ndjson(body)
            assert 0 < len(films) < PAUSED_FILMS
            assert trailer["_trailer"]["complete"] is False
            assert trailer["_trailer"]["rows"] == len(films)
            assert trailer["_trailer"]["error"]
        elif fmt == "json":
            assert body.startswith(b"[{") and not body.endswith(b"]")
            with pytest.raises(orjson.JSONDecodeError):
                orjson.loads(body)
        else:
            records = parse_csv(body)
            assert records[0] == list(COLUMNS)
            assert records[-1][0] == "#incomplete"
            assert records[-1][1] == str(len(records) - 2)
            assert not any(record[0] == "#complete" for record in records)
        await wait_until(bridge_idle(served), 1.0)
    # Compressed, the cut is in the gzip stream too, and no completion mark made it.
    response, head = await start_paused_export(served, slow_client, "", encoding="gzip")
    assert response.headers["Content-Encoding"] == "gzip"
    await kill_the_export_backend()
    body = head + await read_to_the_break(response)
    unzip = zlib.decompressobj(wbits=31)
    text = unzip.decompress(body)
    assert not unzip.eof  # gzip's own end is missing
    assert b'"complete":true' not in text
    # The app still serves, on a fresh connection from its pool.
    assert (await served.get("/api/movies/export?year=1870")).status == 200


@pytest.mark.postgres
def test_django_marks_the_failure_then_breaks_the_transfer(client: Client) -> None:
    make_films(CHUNK_ROWS * 3)
    response = client.get("/movies/export/?sort=id")
    assert isinstance(response, StreamingHttpResponse)
    chunks = iter(response.streaming_content)
    received = [next(chunks)]
    # The test client runs the view on this thread and connection: kill it from another.
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with other.cursor() as cursor:
            cursor.execute(TERMINATE_EXPORT)
            assert len(cursor.fetchall()) == 1
    finally:
        other.close()
    with pytest.raises(DatabaseError):
        received.extend(chunks)  # the marker arrives, then the error
    films, trailer = parse_ndjson(b"".join(received))
    assert trailer["_trailer"]["complete"] is False
    assert trailer["_trailer"]["rows"] == len(films) == CHUNK_ROWS


async def test_the_endpoint_docs_say_how_to_tell_a_whole_file(api: ApiClient) -> None:
    document = await json_of(await api.get("/api/openapi.json"))
    operation = document["paths"]["/api/movies/export"]["get"]
    for mark in ('"complete":true', "unclosed", "#complete,N", "#incomplete"):
        assert mark in operation["description"]
    assert {parameter["name"] for parameter in operation["parameters"]} >= {"format", "sort"}


@pytest.mark.postgres
async def test_a_client_that_leaves_before_the_first_byte_frees_a_blocked_query(
    served: ApiClient, catalogue: Catalogue
) -> None:
    """The export's first query waits on a lock; the client gives up meanwhile."""
    database = connection.settings_dict
    locker = await psycopg.AsyncConnection.connect(
        dbname=database["NAME"], user=database["USER"], password=database["PASSWORD"],
        host=database["HOST"], port=database["PORT"] or None,
    )  # fmt: skip
    try:
        await locker.execute("LOCK TABLE movies_movie IN ACCESS EXCLUSIVE MODE")
        baseline = await busy_backends()  # counts the locker's open transaction
        request = asyncio.create_task(served.get("/api/movies/export"))
        await asyncio.sleep(0.5)
        assert not request.done()
        assert await busy_backends() == baseline + 1  # the export, waiting for the lock
        request.cancel()  # the client closes its connection
        with pytest.raises(asyncio.CancelledError):
            await request
        await wait_until(bridge_idle(served), 1.0)
        assert await busy_backends() == baseline
    finally:
        await locker.close()
    assert (await served.get("/api/movies/export?year=1870")).status == 200


@pytest.mark.postgres
def test_django_closing_the_response_mid_stream_ends_the_transaction(client: Client) -> None:
    make_films(CHUNK_ROWS * 2)
    response = client.get("/movies/export/?format=csv")
    assert isinstance(response, StreamingHttpResponse)
    assert next(iter(response.streaming_content)).startswith(b"id,title,")
    assert connection.in_atomic_block  # the export's snapshot is open
    response.close()  # what the WSGI server does when the client goes away
    assert not connection.in_atomic_block
    assert connection.get_autocommit()


async def test_concurrent_exports_each_get_their_own_whole_file(api: ApiClient) -> None:
    await orm(make_films, CHUNK_ROWS + 500)

    async def body(query: str) -> bytes:
        return await (await get_export(api, query, headers={"Accept-Encoding": "identity"})).read()

    queries = ["?format=ndjson", "?format=csv", "?format=json&sort=-id", "?format=ndjson"]
    together = await asyncio.gather(*(body(query) for query in queries))
    one_by_one = [await body(query) for query in queries]
    assert together == one_by_one
    assert together[0] == together[3]
    assert together[0].endswith(b'{"_trailer":{"complete":true,"rows":%d}}\n' % (CHUNK_ROWS + 500))
    await wait_until(bridge_idle(api), 1.0)
