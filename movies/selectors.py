"""Every ORM read of the catalogue. Each selector returns evaluated data (dicts,
lists, dataclasses), never a QuerySet, so that nothing lazy can escape the
thread it runs on; both servers call these same functions.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, cast

from django.db import connection
from django.db.models import Count, Exists, F, OrderBy, OuterRef, Q, QuerySet

from movies.cursors import Cursor, decode_cursor
from movies.models import Credit, Genre, Movie, Person
from movies.schemas import MovieExportQuery, MovieListQuery, PeopleListQuery

LIST_FIELDS = (
    "id", "title", "year", "release_date", "runtime_minutes", "rating", "poster_url",
    "updated_at",
)  # fmt: skip
DETAIL_FIELDS = (
    "id", "title", "year", "release_date", "runtime_minutes", "rating", "synopsis",
    "wikipedia_slug", "poster_url", "created_at", "updated_at",
)  # fmt: skip
NULLABLE_SORT_FIELDS = frozenset({"rating"})


@dataclass(frozen=True)
class Page:
    """One page of a list and where its neighbours start."""

    items: list[dict[str, Any]]
    next_cursor: str | None = None
    previous_cursor: str | None = None
    next_offset: int | None = None
    previous_offset: int | None = None


def list_movies(query: MovieListQuery) -> Page:
    """A page of films, by offset or by keyset cursor (stable under inserts)."""
    cursor = decode_cursor(query.cursor, query.sort) if query.cursor else None
    field = query.sort.lstrip("-")
    descending = query.sort.startswith("-")
    backwards = cursor is not None and cursor.backwards
    scan_descending = descending != backwards

    movies = filtered_movies(query)
    if cursor is not None:
        movies = movies.filter(_after(field, cursor.value, cursor.id, scan_descending))
    movies = movies.order_by(*_ordering(field, scan_descending))
    start = query.offset if cursor is None else 0
    # A sort key the list does not show (created_at) is read for the cursors only.
    hidden = [field] if field not in LIST_FIELDS else []
    rows = list(movies.values(*LIST_FIELDS, *hidden)[start : start + query.limit + 1])
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    if backwards:
        rows.reverse()
    sort_values = {row["id"]: row[field] for row in rows}
    for row in rows:
        for name in hidden:
            del row[name]
    _attach_genre_names(rows)

    def boundary(row: dict[str, Any], backwards: bool) -> str:
        return Cursor(query.sort, sort_values[row["id"]], row["id"], backwards).encode()

    if not rows:
        return Page(items=[])
    first, last = rows[0], rows[-1]
    if backwards:
        # Going back: the page after this one is where the reader came from.
        return Page(
            items=rows,
            next_cursor=boundary(last, False),
            previous_cursor=boundary(first, True) if has_more else None,
        )
    previous_offset = max(0, query.offset - query.limit) if query.offset else None
    return Page(
        items=rows,
        next_cursor=boundary(last, False) if has_more else None,
        previous_cursor=boundary(first, True) if cursor is not None else None,
        previous_offset=previous_offset,
    )


def filtered_movies(query: MovieListQuery | MovieExportQuery) -> QuerySet[Movie]:
    """The films matching the list's filters, unordered and lazy: for callers that
    stream (movies.export) or paginate it themselves, never for a handler."""
    movies = Movie.objects.all()
    if query.genre is not None:
        in_genre = Movie.genres.through.objects.filter(
            movie_id=OuterRef("pk"), genre__slug=query.genre
        )
        movies = movies.filter(Exists(in_genre))
    if query.person is not None:
        credited = Credit.objects.filter(movie_id=OuterRef("pk"), person_id=query.person)
        movies = movies.filter(Exists(credited))
    if query.year is not None:
        movies = movies.filter(year=query.year)
    if query.year_min is not None:
        movies = movies.filter(year__gte=query.year_min)
    if query.year_max is not None:
        movies = movies.filter(year__lte=query.year_max)
    if query.q is not None:
        movies = _search(movies, query.q)
    return movies


def _search(movies: QuerySet[Movie], text: str) -> QuerySet[Movie]:
    if connection.vendor == "postgresql":
        from movies.search import movie_search_query, movie_search_vector

        return movies.annotate(search=movie_search_vector()).filter(search=movie_search_query(text))
    return movies.filter(title__icontains=text)


# NULL sorts as the largest value (PostgreSQL's own B-tree order), so both sort
# directions of a nullable field still walk the (field, id) index.
def _ordering(field: str, descending: bool) -> tuple[OrderBy, OrderBy]:
    if descending:
        return F(field).desc(nulls_first=True), F("id").desc()
    return F(field).asc(nulls_last=True), F("id").asc()


def sort_order(sort: str) -> tuple[OrderBy, OrderBy]:
    """The ORDER BY of an API sort key (``title``, ``-year``, ...), tie-broken by id."""
    return _ordering(sort.lstrip("-"), sort.startswith("-"))


def _after(field: str, value: Any, row_id: int, descending: bool) -> Q:
    """Rows that come after (value, row_id) in the scan order."""
    op = "lt" if descending else "gt"
    tie = Q(**{f"id__{op}": row_id})
    if value is None:
        null_tail = Q(**{f"{field}__isnull": True}) & tie
        return Q(**{f"{field}__isnull": False}) | null_tail if descending else null_tail
    after = Q(**{f"{field}__{op}": value}) | (Q(**{field: value}) & tie)
    if field in NULLABLE_SORT_FIELDS and not descending:
        after |= Q(**{f"{field}__isnull": True})
    return after


def _attach_genre_names(rows: list[dict[str, Any]]) -> None:
    names: dict[int, list[str]] = defaultdict(list)
    if rows:
        links = (
            Movie.genres.through.objects.filter(movie_id__in=[row["id"] for row in rows])
            .order_by("genre__name")
            .values_list("movie_id", "genre__name")
        )
        for movie_id, name in links:
            names[movie_id].append(name)
    for row in rows:
        row["genres"] = names[row["id"]]


def get_movie(movie_id: int) -> dict[str, Any] | None:
    """A film with genres, directors and cast in billing order: three queries."""
    movie = Movie.objects.filter(pk=movie_id).values(*DETAIL_FIELDS).first()
    if movie is None:
        return None
    movie["genres"] = list(
        Genre.objects.filter(movies=movie_id).order_by("name").values("slug", "name")
    )
    credits = (
        Credit.objects.filter(movie_id=movie_id)
        .order_by("role", "billing_order", "id")
        .values_list("role", "person_id", "person__name", "character_name")
    )
    movie["directors"] = []
    movie["cast"] = []
    for role, person_id, name, character in credits:
        if role == Credit.Role.DIRECTOR:
            movie["directors"].append({"id": person_id, "name": name})
        else:
            movie["cast"].append({"id": person_id, "name": name, "character": character})
    return movie


def list_genres() -> list[dict[str, Any]]:
    """Every genre with the number of films in it."""
    genres = (
        Genre.objects.annotate(movie_count=Count("movies"))
        .order_by("name")
        .values("slug", "name", "movie_count")
    )
    return cast(list[dict[str, Any]], list(genres))


def list_people(query: PeopleListQuery) -> Page:
    """A page of people by name, optionally matching a name substring."""
    people = Person.objects.order_by("name", "id")
    if query.q is not None:
        people = people.filter(name__icontains=query.q)
    page = people.values("id", "name")[query.offset : query.offset + query.limit + 1]
    rows = cast(list[dict[str, Any]], list(page))
    has_more = len(rows) > query.limit
    return Page(
        items=rows[: query.limit],
        next_offset=query.offset + query.limit if has_more else None,
        previous_offset=max(0, query.offset - query.limit) if query.offset else None,
    )


def get_person(person_id: int) -> dict[str, Any] | None:
    """A person with their filmography, newest first."""
    person = cast(
        dict[str, Any] | None, Person.objects.filter(pk=person_id).values("id", "name").first()
    )
    if person is None:
        return None
    credits = (
        Credit.objects.filter(person_id=person_id)
        .order_by("-movie__year", "movie__title", "movie_id", "role")
        .values_list("movie_id", "movie__title", "movie__year", "role", "character_name")
    )
    person["filmography"] = [
        {
            "movie": {"id": movie_id, "title": title, "year": year},
            "role": role,
            "character": character,
        }
        for movie_id, title, year, role, character in credits
    ]
    return person
