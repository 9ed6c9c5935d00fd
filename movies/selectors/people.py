"""The people and genre reads: the genre list with counts, a page of people, and
one person's filmography, each one statement.
"""

from __future__ import annotations

from typing import Any, cast

from django.db import router
from django.db.models import F, QuerySet

from movies import prepared
from movies.cursors import Page
from movies.expressions import RowAfter
from movies.models import Genre, Person
from movies.prepared import Param
from movies.schemas import PEOPLE_SORT, PeopleListQuery
from movies.shapes import GenreCount, PersonDetail, PersonRef

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
    offset or by keyset cursor (index person_name_id): one statement.

    As the film list does, every ``next`` is a cursor, so following ``next`` never
    meets the offset limit; ``previous`` is an offset while the reader is on offsets.
    """
    cursor = query.cursor
    backwards = cursor is not None and cursor.backwards
    searching = query.q is not None

    def build() -> QuerySet[Any, Any]:
        people = Person.objects.all()
        if searching:
            people = people.filter(name__icontains=Param("q", _NAME))
        if cursor is not None:
            # One row comparison: the index scan starts at the boundary.
            bound = (Param("after_name", _NAME), Param("after_id", _ID))
            people = people.filter(RowAfter((F("name"), F("id")), bound, descending=backwards))
        order = ("-name", "-id") if backwards else ("name", "id")
        return people.order_by(*order).values("id", "name")

    values: dict[str, Any] = {"q": query.q} if searching else {}
    if cursor is not None:
        values["after_name"], values["after_id"] = cursor.value, cursor.id
    rows = prepared.run(
        ("person-list", searching, cursor is not None, backwards),
        build,
        values or None,
        using=router.db_for_read(Person),
        limit=query.limit + 1,
        offset=query.offset if cursor is None else 0,
        # A common name is best found walking the name index, a rare one through
        # person_name_trgm (0002): planned with the name searched for.
        plan_each=searching,
    )
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    if backwards:
        rows.reverse()
    edges = (rows[0]["name"], rows[-1]["name"]) if rows else (None, None)
    return Page.keyset(
        cast("list[PersonRef]", rows), sort=PEOPLE_SORT, edges=edges,
        resumed=cursor is not None, backwards=backwards, has_more=has_more,
        offset=query.offset, limit=query.limit,
    )  # fmt: skip


def get_person(person_id: int) -> PersonDetail | None:
    """A person with their filmography, newest first: one statement (the person
    joined to their credits, one row per credit, or one row of NULLs for none)."""
    rows = prepared.run(
        ("person-detail",),
        _person_with_credits,
        {"id": person_id},
        using=router.db_for_read(Person),
    )
    if not rows:
        return None
    first = rows[0]
    person: PersonDetail = {
        "id": first["id"],
        "name": first["name"],
        "filmography": [
            {
                "movie": {
                    "id": row["credits__movie_id"],
                    "title": row["credits__movie__title"],
                    "year": row["credits__movie__year"],
                },
                "role": row["credits__role"],
                "character": row["credits__character_name"],
            }
            for row in rows
            if row["credits__movie_id"] is not None
        ],
    }
    return person


def _person_with_credits() -> QuerySet[Any, Any]:
    return (
        Person.objects.filter(pk=Param("id", Person._meta.get_field("id")))
        .order_by(
            "-credits__movie__year", "credits__movie__title", "credits__movie_id", "credits__role"
        )
        .values(
            "id",
            "name",
            "credits__movie_id",
            "credits__movie__title",
            "credits__movie__year",
            "credits__role",
            "credits__character_name",
        )
    )
