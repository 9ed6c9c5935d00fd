"""The people and genre reads: the genre list with counts, a page of people, and
one person's filmography, each one statement.
"""

from __future__ import annotations

from typing import Any, cast

from django.db import router
from django.db.models import Count, QuerySet

from movies import prepared
from movies.models import Genre, Person
from movies.prepared import Param
from movies.schemas import PeopleListQuery
from movies.shapes import GenreCount, Page, PersonDetail, PersonRef


def list_genres() -> list[GenreCount]:
    """Every genre with the number of films in it: one statement."""

    def build() -> QuerySet[Any, Any]:
        genres = Genre.objects.annotate(movie_count=Count("movies"))
        return genres.order_by("name").values("slug", "name", "movie_count")

    rows = prepared.run(("genre-list",), build, using=router.db_for_read(Genre))
    return cast("list[GenreCount]", rows)


def list_people(query: PeopleListQuery) -> Page[PersonRef]:
    """A page of people by name, optionally matching a name substring: one statement."""
    searching = query.q is not None

    def build() -> QuerySet[Any, Any]:
        people = Person.objects.order_by("name", "id")
        if searching:
            people = people.filter(name__icontains=Param("q", Person._meta.get_field("name")))
        return people.values("id", "name")

    rows = prepared.run(
        ("person-list", searching),
        build,
        {"q": query.q} if searching else None,
        using=router.db_for_read(Person),
        limit=query.limit + 1,
        offset=query.offset,
    )
    has_more = len(rows) > query.limit
    return Page(
        items=cast("list[PersonRef]", rows[: query.limit]),
        next_offset=query.offset + query.limit if has_more else None,
        previous_offset=max(0, query.offset - query.limit) if query.offset else None,
    )


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
