"""Loading a synthetic catalogue: COPY on PostgreSQL, ``bulk_create`` batches elsewhere.

The whole load is one transaction, so a seed is either fully loaded or absent;
that is what lets a second run with the same seed recognise a finished load
and do nothing. Ids of films and people are reserved up front (on PostgreSQL
the sequence is moved past them first, under a table lock), so rows are
written with their final ids, credits need no lookups, and later ORM inserts
continue after them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from django.db import connection, transaction
from django.db.models import Max, Model, Q
from django.utils import timezone

from movies import changes
from movies.genre_copies import GenreOrder, recount
from movies.importing import normalise_genre, person_key
from movies.importing.bulk import Row, analyze, insert_rows
from movies.models import Credit, Genre, Movie, Person
from movies.synthetic.factory import (
    GENRES,
    FilmFactory,
    SyntheticFilm,
    key_prefix,
    person_name,
    source_key,
)

Through = Movie.genres.through
MOVIE_COLUMNS = (
    "id",
    "source_key",
    "title",
    "year",
    "release_date",
    "runtime_minutes",
    "rating",
    "synopsis",
    "wikipedia_slug",
    "poster_url",
    "created_at",
    "updated_at",
    "genre_list",
)
PERSON_COLUMNS = ("id", "name", "key", "created_at", "updated_at")
LINK_COLUMNS = ("movie_id", "genre_id")
CREDIT_COLUMNS = ("movie_id", "person_id", "role", "billing_order", "character_name")
LOOKUP_CHUNK = 10_000


@dataclass(slots=True)
class GenerateReport:
    """What a synthetic load did."""

    seed: int
    films: int = 0
    people_created: int = 0
    people_reused: int = 0
    genres_created: int = 0
    credits: int = 0
    already_loaded: bool = False
    seconds: float = 0.0


class GenerateError(Exception):
    """The load cannot go ahead; the message says why and what to do."""


def default_people(count: int) -> int:
    """Pool size when none is given: one person for every four films, at least 10."""
    return max(10, count // 4)


def _reserve_ids(model: type[Model], count: int) -> int:
    """Return the first of ``count`` consecutive free ids of ``model``'s table."""
    if connection.vendor != "postgresql":
        # SQLite: the write transaction (IMMEDIATE) already excludes other writers.
        top = model._default_manager.aggregate(top=Max("id"))["top"]
        return int(top or 0) + 1
    table = model._meta.db_table
    with connection.cursor() as cursor:
        # Moving the sequence past the block reserves it; the table's maximum
        # covers rows that were written with explicit ids by anything else.
        cursor.execute(
            f"""
            WITH s AS (SELECT pg_get_serial_sequence(%s, 'id')::regclass AS seq)
            SELECT setval(s.seq, GREATEST(
                (SELECT COALESCE(MAX(id), 0) FROM {connection.ops.quote_name(table)}),
                COALESCE(pg_sequence_last_value(s.seq), 0)
            ) + %s) - %s + 1
            FROM s
            """,
            [table, count, count],
        )
        row = cursor.fetchone()
    assert row is not None
    return int(row[0])


def _genre_ids(report: GenerateReport) -> list[int]:
    """Ids of ``GENRES`` in order, reusing existing genres by slug (or name)."""
    ids: list[int] = []
    for name in GENRES:
        slug, canonical = normalise_genre(name)
        genre = Genre.objects.filter(Q(slug=slug) | Q(name=canonical)).order_by("id").first()
        if genre is None:
            genre = Genre.objects.create(slug=slug, name=canonical)
            report.genres_created += 1
        ids.append(genre.pk)
    return ids


def _person_ids(pool: int, now: datetime, report: GenerateReport) -> list[int]:
    """Ids of the pool's people by index, reusing anyone already stored under the same key."""
    names = [person_name(index) for index in range(pool)]
    keys = [person_key(name) for name in names]
    found: dict[str, int] = {}
    for start in range(0, pool, LOOKUP_CHUNK):
        chunk = keys[start : start + LOOKUP_CHUNK]
        found.update(Person.objects.filter(key__in=chunk).values_list("key", "id"))
    missing = [index for index, key in enumerate(keys) if key not in found]
    first_id = _reserve_ids(Person, len(missing)) if missing else 0
    rows: list[Row] = []
    for offset, index in enumerate(missing):
        found[keys[index]] = first_id + offset
        rows.append((first_id + offset, names[index], keys[index], now, now))
    insert_rows(Person, PERSON_COLUMNS, rows)
    report.people_created = len(missing)
    report.people_reused = pool - len(missing)
    return [found[key] for key in keys]


def _tables(*models: type[Model]) -> str:
    return ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)


def _batches(films: Iterable[SyntheticFilm], size: int) -> Iterator[list[SyntheticFilm]]:
    iterator = iter(films)
    while batch := list(islice(iterator, size)):
        yield batch


def _film_rows(
    batch: list[SyntheticFilm],
    seed: int,
    first_id: int,
    genre_ids: list[int],
    person_ids: list[int],
    now: datetime,
    order: GenreOrder,
) -> tuple[list[Row], list[Row], list[Row]]:
    movies: list[Row] = []
    links: list[Row] = []
    credits: list[Row] = []
    cast, director = Credit.Role.CAST.value, Credit.Role.DIRECTOR.value
    for film in batch:
        pk = first_id + film.n
        genres = [genre_ids[genre] for genre in film.genres]
        movies.append(
            (pk, source_key(seed, film.n), film.title, film.year, film.release_date)
            + (film.runtime_minutes, film.rating, film.synopsis, "", "", now, now)
            + (order.text(genres),)
        )
        links += [(pk, genre) for genre in genres]
        credits += [(pk, person_ids[p], cast, order, "") for order, p in enumerate(film.cast)]
        credits += [
            (pk, person_ids[p], director, order, "") for order, p in enumerate(film.directors)
        ]
    return movies, links, credits


def generate_catalogue(
    count: int,
    seed: int,
    *,
    people: int | None = None,
    batch_size: int = 10_000,
    on_progress: Callable[[int, int], None] | None = None,
) -> GenerateReport:
    """Load ``count`` synthetic films for ``seed``, or nothing if that seed is loaded.

    Raises :class:`GenerateError` if the seed is partly present with another
    count. ``on_progress(done, count)`` is called after every batch.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    started = time.perf_counter()
    report = GenerateReport(seed=seed)
    pool = people if people is not None else default_people(count)
    postgres = connection.vendor == "postgresql"
    now = timezone.now()
    with transaction.atomic():
        if postgres:
            # Writers wait for the load; readers do not. Makes the check below and
            # the id reservations safe against a concurrent load or insert.
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {_tables(Movie, Person)} IN SHARE ROW EXCLUSIVE MODE")
        existing = Movie.objects.filter(source_key__startswith=key_prefix(seed)).count()
        if existing == count:
            report.already_loaded, report.films = True, existing
            return report
        if existing:
            raise GenerateError(
                f"seed {seed} already has {existing} synthetic films, not {count}: "
                "use another --seed, or delete those films first"
            )
        genre_ids = _genre_ids(report)
        person_ids = _person_ids(pool, now, report)
        first_id = _reserve_ids(Movie, count)
        factory = FilmFactory(seed, pool)
        order = GenreOrder()
        for batch in _batches(factory.films(count), batch_size):
            movies, links, credits = _film_rows(
                batch, seed, first_id, genre_ids, person_ids, now, order
            )
            insert_rows(Movie, MOVIE_COLUMNS, movies)
            insert_rows(Through, LINK_COLUMNS, links)
            insert_rows(Credit, CREDIT_COLUMNS, credits)
            report.films += len(movies)
            report.credits += len(credits)
            if on_progress is not None:
                on_progress(report.films, count)
        # COPY sends no model signals: the genres' film counts, and one coarse
        # announcement, delivered on commit.
        recount(Genre.objects.all())
        changes.everything_changed()
    # Fresh statistics, or the planner prices the new rows as an empty table.
    analyze(Movie, Person, Credit, Through, Genre)
    report.seconds = time.perf_counter() - started
    return report
