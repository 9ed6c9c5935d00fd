"""Change notifications: every committed write to the catalogue is announced on a
PostgreSQL channel, so the API workers can drop what they cached (aioapi/response_cache.py)
and tell live clients (``GET /api/events``).

The NOTIFY is sent inside the writing transaction: PostgreSQL delivers it on
commit, once the change is visible to new snapshots, and drops it on rollback.
ORM writes are caught with model signals; bulk writes, which send none
(``bulk_create``, COPY), call :func:`films_imported` or :func:`everything_changed`
at the end of each committed batch. Every notification carries an id drawn from
the sequence ``movies_change_seq`` (migration 0005), so all listeners see the
same id for the same change.

A payload is JSON: ``{"id": 7, "kind": "movie", "op": "update", "movies": [42]}``.
``kind`` is what was written (movie, person, genre, credit, or ``all`` when
anything may have changed); ``movies``, ``people`` and ``genres`` list the ids
touched (absent when empty). A change too large for one payload is split into
several; past :data:`MAX_NOTIFICATIONS` it becomes one ``all``.

SQLite has no NOTIFY: there nothing is connected and nothing is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

import orjson
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model, QuerySet
from django.db.models.signals import m2m_changed, post_delete, post_save

from movies.models import Credit, Genre, Movie, Person

CHANNEL = "mymoviedb_changes"
SEQUENCE = "movies_change_seq"
# PostgreSQL refuses payloads of 8000 bytes or more; keep room for the id.
MAX_PAYLOAD_BYTES = 7900
# A change that needs more notifications than this is announced as "all".
MAX_NOTIFICATIONS = 16

Kind = Literal["movie", "person", "genre", "credit", "all"]
Op = Literal["create", "update", "delete", "import"]
KINDS: tuple[Kind, ...] = get_args(Kind)
OPS: tuple[Op, ...] = get_args(Op)
ID_FIELDS = ("movies", "people", "genres")
# The id goes in front of the JSON object inside the statement, in one round trip.
NOTIFY_SQL = f"SELECT pg_notify(%s, concat('{{\"id\":', nextval('{SEQUENCE}'), ',', %s::text))"


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change; ``id`` is set once the database has numbered it."""

    kind: Kind
    op: Op
    movies: tuple[int, ...] = ()
    people: tuple[int, ...] = ()
    genres: tuple[int, ...] = ()
    id: int | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """Every field, lists always present (the body of a server-sent event)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "op": self.op,
            "movies": list(self.movies),
            "people": list(self.people),
            "genres": list(self.genres),
        }

    def body(self) -> bytes:
        """The payload without its id, empty id lists left out."""
        payload: dict[str, Any] = {"kind": self.kind, "op": self.op}
        for name in ID_FIELDS:
            if ids := getattr(self, name):
                payload[name] = list(ids)
        return orjson.dumps(payload)

    @classmethod
    def from_payload(cls, text: str) -> Change:
        """Parse a notification payload; ``ValueError`` says what is wrong with it."""
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as error:
            raise ValueError(f"not JSON: {error}") from None
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        kind, op, number = data.get("kind"), data.get("op"), data.get("id")
        if kind not in KINDS or op not in OPS:
            raise ValueError(f"unknown kind or op: {kind!r}, {op!r}")
        if number is not None and not _is_int(number):
            raise ValueError(f"id is not an integer: {number!r}")
        ids: dict[str, tuple[int, ...]] = {}
        for name in ID_FIELDS:
            values = data.get(name, [])
            if not isinstance(values, list) or not all(_is_int(value) for value in values):
                raise ValueError(f"{name} is not a list of integers")
            ids[name] = tuple(values)
        return cls(cast(Kind, kind), cast(Op, op), id=number, **ids)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def split(change: Change, limit: int = MAX_PAYLOAD_BYTES) -> list[bytes]:
    """The payloads announcing ``change``, each at most ``limit`` bytes."""
    whole = change.body()
    if len(whole) <= limit:
        return [whole]
    base = len(Change(change.kind, change.op).body())
    chunks: list[dict[str, list[int]]] = [{}]
    size = base
    for name in ID_FIELDS:
        for value in getattr(change, name):
            current = chunks[-1]
            # ',"movies":[' and ']' around a chunk's first id of a list, ',' before the others.
            cost = len(str(value)) + (len(name) + 6 if name not in current else 1)
            if size + cost > limit:
                chunks.append({})
                current, size = chunks[-1], base
                cost = len(str(value)) + len(name) + 6
            current.setdefault(name, []).append(value)
            size += cost
    if len(chunks) > MAX_NOTIFICATIONS:
        return [Change("all", change.op).body()]
    return [
        Change(
            change.kind,
            change.op,
            movies=tuple(chunk.get("movies", ())),
            people=tuple(chunk.get("people", ())),
            genres=tuple(chunk.get("genres", ())),
        ).body()
        for chunk in chunks
    ]


def notify(changes: Iterable[Change], using: str = DEFAULT_DB_ALIAS) -> None:
    """Announce ``changes`` on the open transaction of ``using`` (nothing on SQLite)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    payloads = [payload for change in changes for payload in split(change)]
    if not payloads:
        return
    with connection.cursor() as cursor:
        for payload in payloads:
            # The payload goes without its opening brace: the statement writes it.
            cursor.execute(NOTIFY_SQL, [CHANNEL, payload[1:].decode()])


def films_imported(
    movie_ids: Sequence[int],
    *,
    people_created: bool = False,
    genres_created: bool = False,
    using: str = DEFAULT_DB_ALIAS,
) -> None:
    """Announce a committed-to-be batch of bulk writes (the importer).

    The people credited in the films now are listed too: a film that gained a
    credit changes that person's filmography. (One that lost it is found by the
    film's id: the cache tags a filmography with the films it lists.)
    """
    if connections[using].vendor != "postgresql":
        return
    changes: list[Change] = []
    if genres_created:
        changes.append(Change("genre", "create"))
    if people_created:
        changes.append(Change("person", "create"))
    if movie_ids:
        credited = (
            Credit.objects.using(using)
            .filter(movie_id__in=movie_ids)
            .order_by()
            .values_list("person_id", flat=True)
            .distinct()
        )
        changes.append(Change("movie", "import", tuple(movie_ids), tuple(sorted(credited))))
    notify(changes, using)


def everything_changed(using: str = DEFAULT_DB_ALIAS) -> None:
    """Announce that anything may have changed (a synthetic catalogue load)."""
    notify([Change("all", "import")], using)


def credits_replaced(
    movie_id: int, person_ids: Iterable[int], using: str = DEFAULT_DB_ALIAS
) -> None:
    """Announce credits written with ``bulk_create`` (movies.services)."""
    notify([Change("credit", "update", (movie_id,), tuple(sorted(set(person_ids))))], using)


# --- model signals ----------------------------------------------------------------


def _saved(sender: type[Model], instance: Model, created: bool, using: str, **_: Any) -> None:
    op: Op = "create" if created else "update"
    notify([_change_of(instance, op)], using)


def _deleted(sender: type[Model], instance: Model, using: str, **kwargs: Any) -> None:
    if isinstance(instance, Credit) and _cascaded(kwargs.get("origin")):
        # Deleted with its film or person: that deletion's own notification covers it.
        return
    notify([_change_of(instance, "delete")], using)


def _cascaded(origin: object) -> bool:
    if isinstance(origin, Movie | Person):
        return True
    return isinstance(origin, QuerySet) and origin.model in (Movie, Person)


def _change_of(instance: Model, op: Op) -> Change:
    if isinstance(instance, Movie):
        return Change("movie", op, movies=(instance.pk,))
    if isinstance(instance, Person):
        return Change("person", op, people=(instance.pk,))
    if isinstance(instance, Genre):
        return Change("genre", op, genres=(instance.pk,))
    assert isinstance(instance, Credit), type(instance)
    return Change("credit", op, movies=(instance.movie_id,), people=(instance.person_id,))


M2M_ACTIONS = {"post_add", "post_remove", "post_clear"}


def _genres_linked(
    instance: Model,
    action: str,
    reverse: bool,
    pk_set: set[int] | None,
    using: str,
    **_: Any,
) -> None:
    if action not in M2M_ACTIONS:
        return
    if not reverse:  # movie.genres.add(...)
        change = Change(
            "movie", "update", movies=(instance.pk,), genres=tuple(sorted(pk_set or ()))
        )
    elif pk_set:  # genre.movies.add(...)
        change = Change("movie", "update", movies=tuple(sorted(pk_set)), genres=(instance.pk,))
    else:  # genre.movies.clear(): which films is unknown
        change = Change("genre", "update", genres=(instance.pk,))
    notify([change], using)


def _people_linked(
    instance: Model,
    action: str,
    reverse: bool,
    pk_set: set[int] | None,
    using: str,
    **_: Any,
) -> None:
    # movie.people.add(person, through_defaults=...) writes credits without post_save.
    if action not in M2M_ACTIONS:
        return
    others = tuple(sorted(pk_set or ()))
    if reverse:  # person.movies.add(...)
        change = Change("credit", "update", movies=others, people=(instance.pk,))
        if action == "post_clear":
            change = Change("person", "update", people=(instance.pk,))
    else:
        change = Change("credit", "update", movies=(instance.pk,), people=others)
        if action == "post_clear":
            change = Change("movie", "update", movies=(instance.pk,))
    notify([change], using)


def install() -> None:
    """Connect the signal receivers (``MoviesConfig.ready``; PostgreSQL only)."""
    if connections[DEFAULT_DB_ALIAS].vendor != "postgresql":
        return  # nothing listens on SQLite; keep its deletes fast
    for model in (Movie, Person, Genre, Credit):
        uid = f"movies.changes.{model.__name__}"
        post_save.connect(_saved, sender=model, dispatch_uid=f"{uid}.saved")
        post_delete.connect(_deleted, sender=model, dispatch_uid=f"{uid}.deleted")
    m2m_changed.connect(
        _genres_linked, sender=Movie.genres.through, dispatch_uid="movies.changes.genres"
    )
    m2m_changed.connect(
        _people_linked, sender=Movie.people.through, dispatch_uid="movies.changes.people"
    )
