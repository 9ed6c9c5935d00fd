"""Streaming export of the catalogue as NDJSON, JSON or CSV, in framework-neutral chunks.

Both servers send the bytes of :func:`export_chunks`: aioapi from an ORM thread
through aioapi.streaming, the Django comparison view through a
``StreamingHttpResponse``. Rows come from a server-side cursor on PostgreSQL
(``.iterator()``), ``CHUNK_ROWS`` at a time, so memory stays flat whatever the
row count; each chunk costs one more query, for the genres of its films. Behind
PgBouncer the cursor is opened on a direct connection (streaming_alias).

Every format says whether it is complete, so a file cut short never looks whole:

* ``ndjson``: one film per line, then ``{"_trailer":{"complete":true,"rows":N}}``.
  After a failure the last line is ``{"_trailer":{"complete":false,...}}``.
* ``json``: one array. After a failure the array is never closed, so parsers fail.
* ``csv``: a header row, one row per film, then the record ``#complete,N``. After a
  failure the last record is ``#incomplete,N,<reason>``. No film row can start
  with ``#`` (the first column is the id), so a reader drops that one record.

In every case a file whose completeness marker is missing was cut short, whatever
cut it (the server, the network, a full disk). After yielding a failure marker
the generator re-raises the error, so the server can also break the HTTP
transfer (no final chunk) for clients that check only that.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from itertools import islice
from typing import Any, cast

import orjson
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, router, transaction
from django.db.models import Model

from movies.export_genres import GenreNames
from movies.models import Movie
from movies.schemas import ExportFormat, MovieExportQuery
from movies.selectors import filtered_movies, sort_order

# Rows per FETCH of the server-side cursor, per genre query and per chunk sent.
CHUNK_ROWS = 2000
ROW_FIELDS = ("id", "title", "year", "release_date", "runtime_minutes", "rating")
COLUMNS = (*ROW_FIELDS, "genres")
CSV_GENRE_SEPARATOR = "|"
# OWASP's CSV-injection rule: a spreadsheet reads a cell starting with one of these as
# a formula (=HYPERLINK(...) leaks data when clicked). Text cells that start with one
# get a leading apostrophe, which spreadsheets show as text and do not evaluate.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FAILURE_REASON = "the database failed part-way through the export; retry it"

Row = tuple[int, str, int, date | None, int | None, float | None]
Genres = list[list[str]]  # the genre names of each film of a batch, in its order


# The endpoint's documentation (OpenAPI description): how a client tells a whole file.
COMPLETENESS = (
    "Streamed as it is read, in `sort` order (`id` by default). Each format says whether "
    "the file is whole: **ndjson** ends with the line "
    '`{"_trailer":{"complete":true,"rows":N}}` (after a failure: `"complete":false` and an '
    '`"error"`); **json** is one array, left unclosed after a failure so that no parser '
    "accepts it; **csv** has a header row and ends with the record `#complete,N` (after a "
    "failure: `#incomplete,N,<reason>`; no film row starts with `#`; a title or genres "
    "cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is written "
    "with a leading `'`, so that spreadsheets do not run it as a formula). A file without its "
    "completion mark was cut short. After a failure the server also ends the connection "
    "without the final chunk, so HTTP clients report a truncated transfer. gzip is used "
    "when `Accept-Encoding` allows it."
)


@dataclass(frozen=True)
class Download:
    """How a format is served: its media type and the file name offered."""

    content_type: str
    filename: str

    @property
    def disposition(self) -> str:
        return f'attachment; filename="{self.filename}"'


DOWNLOADS: dict[ExportFormat, Download] = {
    "ndjson": Download("application/x-ndjson", "movies.ndjson"),
    "json": Download("application/json", "movies.json"),
    "csv": Download("text/csv; charset=utf-8", "movies.csv"),
}


class Encoder:
    """The bytes of one format: what opens, what carries rows, what closes it."""

    def head(self) -> bytes:
        return b""

    def rows(self, batch: list[Row], genres: Genres, first: bool) -> bytes:
        raise NotImplementedError

    def complete(self, rows: int) -> bytes:
        raise NotImplementedError

    def failed(self, rows: int) -> bytes:
        return b""


class NdjsonEncoder(Encoder):
    def rows(self, batch: list[Row], genres: Genres, first: bool) -> bytes:
        lines = list(map(orjson.dumps, _items(batch, genres)))
        lines.append(b"")  # the join then ends the chunk with a newline
        return b"\n".join(lines)

    def complete(self, rows: int) -> bytes:
        return orjson.dumps({"_trailer": {"complete": True, "rows": rows}}) + b"\n"

    def failed(self, rows: int) -> bytes:
        trailer = {"complete": False, "rows": rows, "error": FAILURE_REASON}
        return orjson.dumps({"_trailer": trailer}) + b"\n"


class JsonEncoder(Encoder):
    def head(self) -> bytes:
        return b"["

    def rows(self, batch: list[Row], genres: Genres, first: bool) -> bytes:
        # One orjson call per chunk: the array of the chunk without its brackets.
        items = orjson.dumps(_items(batch, genres))[1:-1]
        return items if first else b"," + items

    def complete(self, rows: int) -> bytes:
        return b"]"

    # failed(): nothing, so the array stays open and no parser accepts the file.


class CsvEncoder(Encoder):
    """RFC 4180 records; text cells that a spreadsheet would run as formulas are
    neutralised (:func:`as_text`). Numbers are written as they are: a negative
    number is data, not a formula, and an apostrophe would turn it into text."""

    def head(self) -> bytes:
        return self._encode([COLUMNS])

    def rows(self, batch: list[Row], genres: Genres, first: bool) -> bytes:
        join = CSV_GENRE_SEPARATOR.join
        return self._encode(
            (movie_id, as_text(title), year, released, runtime, rating, as_text(join(names)))
            for (movie_id, title, year, released, runtime, rating), names in zip(
                batch, genres, strict=True
            )
        )

    def complete(self, rows: int) -> bytes:
        return self._encode([("#complete", rows)])

    def failed(self, rows: int) -> bytes:
        return self._encode([("#incomplete", rows, FAILURE_REASON)])

    @staticmethod
    def _encode(records: Iterable[Iterable[Any]]) -> bytes:
        # csv's defaults are RFC 4180: "\r\n" line ends, quotes only where needed,
        # None as an empty field.
        text = io.StringIO()
        csv.writer(text).writerows(records)
        return text.getvalue().encode()


def streaming_alias(model: type[Model]) -> str:
    """Where a long streamed read of ``model`` (an export) goes: where any read goes,
    except that the primary's is taken from ``settings.DATABASE_DIRECT_ALIAS`` (the
    same server, through ``DATABASE_DIRECT_URL``) when ``default`` is PgBouncer.

    There a server-side cursor streams the rows; through a transaction pooler
    Django fetches them all at once (``DISABLE_SERVER_SIDE_CURSORS``). A direct
    connection also keeps a long export from holding one of PgBouncer's few
    server connections, which every write needs. Reads inside the caller's
    transaction stay on its connection."""
    alias = router.db_for_read(model)
    direct = settings.DATABASE_DIRECT_ALIAS
    if (
        alias == DEFAULT_DB_ALIAS
        and direct in settings.DATABASES
        and not connections[DEFAULT_DB_ALIAS].in_atomic_block
    ):
        return direct
    return alias


def as_text(cell: str) -> str:
    """``cell`` as a spreadsheet shows it as text: an apostrophe before a formula start."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


ENCODERS: dict[ExportFormat, Callable[[], Encoder]] = {
    "ndjson": NdjsonEncoder,
    "json": JsonEncoder,
    "csv": CsvEncoder,
}


def export_chunks(query: MovieExportQuery, *, chunk_rows: int | None = None) -> Iterator[bytes]:
    """The export of the films ``query`` selects, in ``query.sort`` order, as byte chunks.

    Run it on one thread from start to end (it holds a database connection and,
    on PostgreSQL, a read-only transaction while it is open); ``close()`` it to
    stop early, which ends the transaction and frees the cursor. Nothing is
    yielded before the first rows are read, so an error there (the database is
    down) reaches the caller before any byte: it can still answer with an error
    status. An error after that is reported in the stream, then re-raised.
    """
    chunk_rows = chunk_rows or CHUNK_ROWS
    alias = streaming_alias(Movie)
    encoder = ENCODERS[query.format]()
    with _read_snapshot(alias):
        genres = GenreNames(alias)
        movies = (
            filtered_movies(query)
            .using(alias)
            .order_by(*sort_order(query.sort))
            .values_list(*ROW_FIELDS)
        )
        # Django's iterator is a generator: closing it closes the cursor at once.
        rows = cast(Generator[Row, None, None], movies.iterator(chunk_size=chunk_rows))
        sent = 0
        try:
            for batch in _batches(rows, chunk_rows):
                chunk = encoder.rows(batch, genres.of([row[0] for row in batch]), first=not sent)
                yield chunk if sent else encoder.head() + chunk
                sent += len(batch)
        except Exception:
            if sent and (marker := encoder.failed(sent)):
                yield marker
            raise
        finally:
            rows.close()
        yield (b"" if sent else encoder.head()) + encoder.complete(sent)


@contextmanager
def _read_snapshot(alias: str) -> Iterator[None]:
    """One read-only snapshot for the whole export on PostgreSQL.

    Inside a transaction the cursor is a plain one that streams as it is read; in
    autocommit Django declares it WITH HOLD, and PostgreSQL then computes the whole
    result before the first row. REPEATABLE READ makes the genre queries see the
    same data as the cursor. SQLite stays in autocommit: Django opens transactions
    there with BEGIN IMMEDIATE, which would block every writer for the whole export.
    """
    connection = connections[alias]
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield  # a caller's transaction (a test's, ATOMIC_REQUESTS) is already one snapshot
        return
    with transaction.atomic(using=alias):
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def _batches(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    while batch := list(islice(rows, size)):
        yield batch


def _items(batch: list[Row], genres: Genres) -> list[dict[str, Any]]:
    return [
        {
            "id": movie_id,
            "title": title,
            "year": year,
            "release_date": release_date,
            "runtime_minutes": runtime,
            "rating": rating,
            "genres": names,
        }
        for (movie_id, title, year, release_date, runtime, rating), names in zip(
            batch, genres, strict=True
        )
    ]
