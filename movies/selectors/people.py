"""The people and genre reads: the genre list with counts, a page of people, and
a person with a page of their filmography, each one statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from django.db import connections, router
from django.db.models import F, Func, OuterRef, QuerySet, TextField
from django.db.models.functions import JSONArray

from movies import prepared
from movies.cursors import Cursor, Page
from movies.expressions import JsonRowArray, Negated, RowAfter
from movies.models import Credit, Genre, Person, PersonNameKey
from movies.prepared import Param
from movies.schemas import FILMOGRAPHY_SORT, PEOPLE_SORT, FilmographyQuery, PeopleListQuery
from movies.shapes import FilmographyEntry, GenreCount, PersonRef

_NAME = Person._meta.get_field("name")
_ID = Person._meta.get_field("id")


def list_genres() -> list[GenreCount]:
    """Every genre with the number of films in it: one statement, 40 rows."""

    def build() -> QuerySet[Any, Any]:
        # The count is kept on the genre's row (movies.genre_copies).
        return Genre.objects.order_by("name").values("slug", "name", "movie_count")

    rows = prepared.run(("genre-list",), build, using=router.db_for_read(Genre))
    return cast("list[GenreCount]", rows)


def list_people(query: PeopleListQuery) -> Page[PersonRef]:
    """A page of people by name (then id), optionally matching a name substring, by
    offset or by keyset cursor: one statement.

    Without ``q`` the page is a range of the index person_name_id. With ``q`` of
    three characters or more on PostgreSQL it is a range of the people filed under
    the query's first three (movies_person_name_key, migration 0014), in name order,
    each tested against the whole query; a shorter ``q`` (and SQLite) tests the
    names of person_name_id in order.

    As the film list does, every ``next`` is a cursor, so following ``next`` never
    meets the offset limit; ``previous`` is an offset while the reader is on offsets.
    """
    cursor = query.cursor
    backwards = cursor is not None and cursor.backwards
    searching = query.q is not None
    keyed = searching and _by_name_key(query.q or "")

    def build() -> QuerySet[Any, Any]:
        people: QuerySet[Any, Any] = Person.objects.all()
        row_id = F("id")
        if keyed:
            q = Param("q", _NAME)
            people = PersonNameKey.objects.filter(key=NameKey(q), name__icontains=q)
            row_id = F("person_id")
        elif searching:
            people = people.filter(name__icontains=Param("q", _NAME))
        if cursor is not None:
            # One row comparison: the index scan starts at the boundary.
            bound = (Param("after_name", _NAME), Param("after_id", _ID))
            people = people.filter(RowAfter((F("name"), row_id), bound, descending=backwards))
        order = (F("name").desc(), row_id.desc()) if backwards else (F("name"), row_id)
        if keyed:  # the person's id under the name the list gives it
            return people.order_by(*order).values("name", id=row_id)
        return people.order_by(*order).values("id", "name")

    values: dict[str, Any] = {"q": query.q} if searching else {}
    if cursor is not None:
        values["after_name"], values["after_id"] = cursor.value, cursor.id
    rows = prepared.run(
        ("person-list", searching, keyed, cursor is not None, backwards),
        build,
        values or None,
        using=router.db_for_read(Person),
        limit=query.limit + 1,
        offset=query.offset if cursor is None else 0,
        # Testing names in order is best for a common substring, the trigram index
        # person_name_trgm (0002) for a rare one: planned with the name searched
        # for. The name keys' range is the one plan for every query.
        plan_each=searching and not keyed,
    )
    has_more = len(rows) > query.limit
    # In the body's key order, whichever table the page was read from.
    people = [{"id": row["id"], "name": row["name"]} for row in rows[: query.limit]]
    if backwards:
        people.reverse()
    edges = (people[0]["name"], people[-1]["name"]) if people else (None, None)
    return Page.keyset(
        cast("list[PersonRef]", people), sort=PEOPLE_SORT, edges=edges,
        resumed=cursor is not None, backwards=backwards, has_more=has_more,
        offset=query.offset, limit=query.limit,
    )  # fmt: skip


class NameKey(Func):
    """The key a name search reads: the query's first three characters, upper-cased,
    as migration 0014's ``movies_name_keys`` files names. The 3 is written into the
    SQL: bound, its type would be unknown to a statement PREPAREd without types,
    and PostgreSQL would pick ``substring``'s regular-expression form."""

    template = "LEFT(UPPER(%(expressions)s), 3)"
    output_field = TextField()


def _by_name_key(q: str) -> bool:
    """Whether a name search reads the name keys: three characters or more (every
    name holding ``q`` is filed under its first three), on PostgreSQL (the table
    is migration 0014's)."""
    return len(q) >= 3 and connections[router.db_for_read(Person)].vendor == "postgresql"


# What the person's detail embeds: the films page a client would get first.
FIRST_FILMS_PAGE = FilmographyQuery.model_validate({})


@dataclass(frozen=True)
class PersonFilms:
    """A person and one page of their filmography: what the person reads return,
    and :meth:`movies.cursors.Page.body` makes a body of (movies.rendering)."""

    person: PersonRef
    page: Page[FilmographyEntry]


def get_person(person_id: int) -> PersonFilms | None:
    """A person with the first page of their filmography: one statement (see
    :func:`get_filmography`); ``None`` if there is no such person."""
    return get_filmography(person_id, FIRST_FILMS_PAGE)


def get_filmography(person_id: int, query: FilmographyQuery) -> PersonFilms | None:
    """A page of a person's filmography, newest first, then by title, film and role,
    by keyset cursor; ``None`` if there is no such person. One statement: the
    person's row with the page's credits as one array, read from one range of the
    index credit_person_filmography (the credit carries its film's title and
    year), so a page costs the same for 14 credits or 10,000.
    """
    cursor = query.cursor
    backwards = cursor is not None and cursor.backwards
    rows = prepared.run(
        ("person-films", query.limit, cursor is not None, backwards),
        partial(_person_with_credits, query.limit + 1, cursor is not None, backwards),
        _bound(person_id, cursor),
        using=router.db_for_read(Person),
    )
    if not rows:
        return None
    found = rows[0]
    entries: list[FilmographyEntry] = [
        {"movie": {"id": movie_id, "title": title, "year": year}, "role": role, "character": name}
        for movie_id, title, year, role, name in found["credit_rows"]
    ]
    has_more = len(entries) > query.limit
    entries = entries[: query.limit]
    if backwards:
        entries.reverse()
    # A credit's cursor holds its place before its film's id ([year, title, role])
    # and the film's id.
    ends = [entries[0], entries[-1]] if entries else []
    keys = [[end["movie"]["year"], end["movie"]["title"], end["role"]] for end in ends]
    page = Page.keyset(
        entries, sort=FILMOGRAPHY_SORT, edges=(keys[0], keys[-1]) if keys else (None, None),
        ids=(ends[0]["movie"]["id"], ends[-1]["movie"]["id"]) if ends else None,
        resumed=cursor is not None, backwards=backwards, has_more=has_more, offset=0,
        limit=query.limit,
    )  # fmt: skip
    return PersonFilms({"id": found["id"], "name": found["name"]}, page)


# A credit's place in its person's filmography, as the index orders it.
_FILMOGRAPHY_KEY = (Negated("movie_year"), F("movie_title"), F("movie_id"), F("role"))
FILMOGRAPHY_ORDER = tuple(key.asc() for key in _FILMOGRAPHY_KEY)
_CREDIT = Credit._meta


def _bound(person_id: int, cursor: Cursor | None) -> dict[str, Any]:
    values: dict[str, Any] = {"id": person_id}
    if cursor is not None:
        year, title, role = cursor.value
        values.update(after_year=-year, after_title=title, after_movie=cursor.id, after_role=role)
    return values


def _person_with_credits(rows: int, resumed: bool, backwards: bool) -> QuerySet[Any, Any]:
    credits = Credit.objects.filter(person=OuterRef("pk"))
    if resumed:
        bound = (
            Param("after_year", _CREDIT.get_field("movie_year")),
            Param("after_title", _CREDIT.get_field("movie_title")),
            Param("after_movie", _CREDIT.get_field("movie").target_field),
            Param("after_role", _CREDIT.get_field("role")),
        )
        credits = credits.filter(RowAfter(_FILMOGRAPHY_KEY, bound, descending=backwards))
    order = [key.desc() for key in _FILMOGRAPHY_KEY] if backwards else FILMOGRAPHY_ORDER
    page = credits.order_by(*order)[:rows].values(
        value=JSONArray("movie_id", "movie_title", "movie_year", "role", "character_name")
    )
    # order_by(): one row, and the model's default order would add a sort node.
    return (
        Person.objects.filter(pk=Param("id", _ID))
        .order_by()
        .values("id", "name", credit_rows=JsonRowArray(page))
    )
