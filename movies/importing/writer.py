"""Writing validated films to the catalogue in batches, one transaction per batch.

An imported film's fields, genres and cast credits follow the source: a
re-import brings them back in line with it (curator edits to those are
overwritten), leaves director credits and character names alone, and does not
touch a film whose stored data already matches, so its ``updated_at`` stays.
People are matched by ``Person.key`` and never renamed; genres by slug or name.
Films missing from a later source are kept: an import adds and updates, it
never deletes.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db import DatabaseError, connection, transaction
from django.db.models import Q

from movies import changes
from movies.genre_copies import GenreOrder, recount
from movies.importing.bulk import analyze, insert_rows
from movies.importing.records import FilmRecord, RecordError, parse_record
from movies.importing.report import ImportAborted, ImportReport, Rejection
from movies.models import Credit, Genre, Movie, Person

T = TypeVar("T")

FIELDS = ("title", "year", "synopsis", "wikipedia_slug", "poster_url")
CREDIT_COLUMNS = ("movie_id", "person_id", "role", "billing_order", "character_name")
# Rows per lookup or insert statement: below SQLite's 32,766 variables whatever
# the batch size, and large enough that round trips stay a small cost.
CHUNK = 2000
Through = Movie.genres.through


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _validate(records: Iterable[object], report: ImportReport) -> dict[str, FilmRecord]:
    films: dict[str, FilmRecord] = {}
    for index, raw in enumerate(records):
        report.records += 1
        try:
            film = parse_record(raw)
        except RecordError as exc:
            report.rejections.append(Rejection(index, str(exc)))
            continue
        if film.source_key in films:
            report.duplicates += 1
        films[film.source_key] = film  # keeps the first position, takes the later data
        report.cast_entries_dropped += film.cast_dropped
        report.posters_refused += film.poster_refused
    return films


@dataclass(slots=True)
class _Stored:
    """The stored state of a batch's films that already exist."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: dict[int, dict[int, int]] = field(default_factory=lambda: defaultdict(dict))
    cast: dict[int, dict[int, tuple[int, int]]] = field(default_factory=lambda: defaultdict(dict))


@dataclass(slots=True)
class _Change:
    """A film to create or update, with the genre ids and cast it should end with."""

    movie: Movie
    created: bool
    genres: set[int]
    cast: dict[int, int]  # person id -> billing order


class _Writer:
    """Writes batches, remembering genre and person ids across them."""

    def __init__(self) -> None:
        self.report = ImportReport()
        # Ids stay valid across batches because a failed batch ends the import.
        self.genre_ids: dict[str, int] = {}
        self.person_ids: dict[str, int] = {}

    def write(self, batch: Sequence[FilmRecord]) -> ImportReport:
        """Write one batch in one transaction and return what it did."""
        self.report = ImportReport()
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # Don't wait for each batch's WAL flush: a server crash could lose the
                # last batches, whole, and re-running the import writes them again.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
            self._ensure_genres(batch)
            self._ensure_people(batch)
            self._write_films(batch, self._stored(batch), GenreOrder())
            # Bulk writes send no model signals: announce the batch (delivered on commit).
            changes.films_imported(
                self.report.changed_ids,
                people_created=self.report.people_created > 0,
                genres_created=self.report.genres_created > 0,
            )
        return self.report

    def _ensure_genres(self, batch: Sequence[FilmRecord]) -> None:
        wanted: dict[str, str] = {}
        for film in batch:
            for slug, name in film.genres:
                if slug not in self.genre_ids:
                    wanted.setdefault(slug, name)
        if not wanted:
            return
        by_slug: dict[str, int] = {}
        by_name: dict[str, int] = {}
        query = Q(slug__in=list(wanted)) | Q(name__in=list(wanted.values()))
        for pk, slug, name in Genre.objects.filter(query).values_list("id", "slug", "name"):
            by_slug[slug] = pk
            by_name[name] = pk
        missing = [
            Genre(slug=slug, name=name)
            for slug, name in wanted.items()
            if slug not in by_slug and name not in by_name
        ]
        if missing:
            Genre.objects.bulk_create(missing, ignore_conflicts=True)
            self.report.genres_created += len(missing)
            slugs = [genre.slug for genre in missing]
            by_slug.update(Genre.objects.filter(slug__in=slugs).values_list("slug", "id"))
        for slug, name in wanted.items():
            self.genre_ids[slug] = by_slug[slug] if slug in by_slug else by_name[name]

    def _lookup_people(self, keys: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for chunk in _chunks(keys, CHUNK):
            found.update(Person.objects.filter(key__in=chunk).values_list("key", "id"))
        return found

    def _ensure_people(self, batch: Sequence[FilmRecord]) -> None:
        wanted: dict[str, str] = {}
        for film in batch:
            for key, name in film.cast:
                if key not in self.person_ids:
                    wanted.setdefault(key, name)
        found = self._lookup_people(list(wanted))
        missing = [key for key in wanted if key not in found]
        if missing:
            # ignore_conflicts: a concurrent import may add the same person.
            people = [Person(key=key, name=wanted[key]) for key in missing]
            Person.objects.bulk_create(people, ignore_conflicts=True, batch_size=CHUNK)
            self.report.people_created += len(missing)
            found.update(self._lookup_people(missing))
        self.person_ids.update(found)

    def _stored(self, batch: Sequence[FilmRecord]) -> _Stored:
        stored = _Stored()
        keys = [film.source_key for film in batch]
        for chunk in _chunks(keys, CHUNK):
            for row in Movie.objects.filter(source_key__in=chunk).values(
                "id", "source_key", *FIELDS
            ):
                stored.rows[row["source_key"]] = row
        ids = [row["id"] for row in stored.rows.values()]
        for id_chunk in _chunks(ids, CHUNK):
            links = Through.objects.filter(movie_id__in=id_chunk)
            for link_id, movie_id, genre_id in links.values_list("id", "movie_id", "genre_id"):
                stored.links[movie_id][genre_id] = link_id
            credits = Credit.objects.filter(movie_id__in=id_chunk, role=Credit.Role.CAST)
            for credit in credits.values_list("id", "movie_id", "person_id", "billing_order"):
                credit_id, movie_id, person_id, order = credit
                stored.cast[movie_id][person_id] = (credit_id, order)
        return stored

    def _write_films(
        self, batch: Sequence[FilmRecord], stored: _Stored, genre_order: GenreOrder
    ) -> None:
        changes: list[_Change] = []
        for film in batch:
            genres = {self.genre_ids[slug] for slug, _ in film.genres}
            change = _Change(
                movie=Movie(
                    source_key=film.source_key,
                    genre_list=genre_order.names(genres),  # the row's copy (movies.genre_copies)
                    **{name: getattr(film, name) for name in FIELDS},
                ),
                created=film.source_key not in stored.rows,
                genres=genres,
                cast={self.person_ids[key]: order for order, (key, _) in enumerate(film.cast)},
            )
            if change.created or not _matches(change, stored.rows[film.source_key], stored):
                changes.append(change)
        self.report.unchanged += len(batch) - len(changes)
        if not changes:
            return
        # One upsert creates new films and updates changed ones; created_at is kept.
        Movie.objects.bulk_create(
            [change.movie for change in changes],
            update_conflicts=True,
            unique_fields=["source_key"],
            update_fields=[*FIELDS, "genre_list", "updated_at"],
            batch_size=CHUNK,
        )
        for change in changes:
            assert change.movie.pk is not None, "bulk upsert sets ids on PostgreSQL and SQLite"
            ids = self.report.created_ids if change.created else self.report.updated_ids
            ids.append(change.movie.pk)
        self._sync_genres(changes, stored)
        self._sync_cast(changes, stored)

    def _sync_genres(self, changes: list[_Change], stored: _Stored) -> None:
        new: list[tuple[int, int]] = []
        stale: list[int] = []
        for change in changes:
            pk = change.movie.pk
            links = stored.links.get(pk, {})
            new += [(pk, genre) for genre in change.genres - links.keys()]
            stale += [link for genre, link in links.items() if genre not in change.genres]
        for chunk in _chunks(stale, CHUNK):
            Through.objects.filter(id__in=chunk).delete()
        insert_rows(Through, ("movie_id", "genre_id"), new)

    def _sync_cast(self, changes: list[_Change], stored: _Stored) -> None:
        new: list[tuple[int, int, str, int, str]] = []
        moved: list[Credit] = []
        stale: list[int] = []
        for change in changes:
            pk = change.movie.pk
            credits = stored.cast.get(pk, {})
            for person, order in change.cast.items():
                if person not in credits:
                    new.append((pk, person, Credit.Role.CAST.value, order, ""))
                elif credits[person][1] != order:
                    moved.append(Credit(id=credits[person][0], billing_order=order))
            stale += [
                credit for person, (credit, _) in credits.items() if person not in change.cast
            ]
        for chunk in _chunks(stale, CHUNK):
            Credit.objects.filter(id__in=chunk).delete()
        insert_rows(Credit, CREDIT_COLUMNS, new)
        Credit.objects.bulk_update(moved, ["billing_order"], batch_size=CHUNK)
        self.report.credits_created += len(new)
        self.report.credits_updated += len(moved)
        self.report.credits_deleted += len(stale)


def _matches(change: _Change, row: dict[str, Any], stored: _Stored) -> bool:
    """Whether a stored film already has the change's fields, genres and cast."""
    pk = row["id"]
    cast = {person: order for person, (_, order) in stored.cast.get(pk, {}).items()}
    return (
        all(row[name] == getattr(change.movie, name) for name in FIELDS)
        and stored.links.get(pk, {}).keys() == change.genres
        and cast == change.cast
    )


def import_movies(
    records: Iterable[object],
    *,
    batch_size: int = 2000,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import films in the reference JSON format; safe to run again on the same data.

    All records are validated first: a rejected record is skipped and listed in
    the report with its reason, and records sharing a source key collapse into
    the last of them. Films are then written ``batch_size`` at a time, each
    batch in one transaction, so a failure never leaves a film half-written.
    ``on_progress(done, total)`` is called after every batch. If the database
    refuses a batch, :class:`ImportAborted` says which, with the committed part.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    started = time.perf_counter()
    report = ImportReport()
    films = list(_validate(records, report).values())
    writer = _Writer()
    done = 0
    for batch in _chunks(films, batch_size):
        try:
            report.add(writer.write(batch))
        except DatabaseError as exc:
            report.seconds = time.perf_counter() - started
            where = f"films {done + 1}..{done + len(batch)} of {len(films)}"
            raise ImportAborted(f"the database refused {where}: {exc}", report) from exc
        done += len(batch)
        if on_progress is not None:
            on_progress(done, len(films))
    if done:
        # Bulk writes send no signals: the genres' film counts, once for the import.
        recount(Genre.objects.all())
        # The first reads after an import must not be planned without statistics.
        analyze(Movie, Through, Credit, Person, Genre)
    report.seconds = time.perf_counter() - started
    return report
