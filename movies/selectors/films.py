"""The film reads: a page of the list, the filtered set the export streams, and
one film's detail, each one statement (see the package's docstring).
"""

from __future__ import annotations

from typing import Any, cast

from django.db import connection, router
from django.db.models import Exists, F, Field, OrderBy, OuterRef, Q, QuerySet
from django.db.models.functions import JSONArray

from movies import prepared
from movies.cursors import Cursor
from movies.expressions import JsonRowArray, ValueArray
from movies.models import Credit, Genre, Movie
from movies.prepared import Param
from movies.schemas import MovieExportQuery, MovieListQuery
from movies.shapes import MovieDetail, MovieSummary, Page

LIST_FIELDS = (
    "id", "title", "year", "release_date", "runtime_minutes", "rating", "poster_url",
    "updated_at",
)  # fmt: skip
DETAIL_FIELDS = (
    "id", "title", "year", "release_date", "runtime_minutes", "rating", "synopsis",
    "wikipedia_slug", "poster_url", "created_at", "updated_at",
)  # fmt: skip
NULLABLE_SORT_FIELDS = frozenset({"rating"})
# The list filters, in the order they are applied, and the field each value is
# compared with (what a Param binds it as).
MOVIE_FILTERS = ("genre", "person", "year", "year_min", "year_max", "q")
_FILTER_FIELDS = {
    "genre": Genre._meta.get_field("slug"),
    "person": Credit._meta.get_field("person").target_field,
    "year": Movie._meta.get_field("year"),
    "year_min": Movie._meta.get_field("year"),
    "year_max": Movie._meta.get_field("year"),
    "q": Movie._meta.get_field("title"),
}
_ID_FIELD = Movie._meta.get_field("id")


def list_sorted(query: MovieListQuery) -> Page[MovieSummary]:
    """A page of films in ``query.sort`` order, by offset or by keyset cursor (stable
    under inserts). One statement: the page's rows, each with its genre names
    aggregated in SQL."""
    cursor = query.after
    field = query.sort.lstrip("-")
    descending = query.sort.startswith("-")
    backwards = cursor is not None and cursor.backwards
    scan_descending = descending != backwards
    # NULLs (unrated films) come last in the list's order, so first when scanning back.
    nulls_first = backwards and field in NULLABLE_SORT_FIELDS
    filters = {name: getattr(query, name) for name in MOVIE_FILTERS}
    present = tuple(name for name, value in filters.items() if value is not None)
    # The cursor's value is NULL or not: two different WHERE clauses.
    after = None if cursor is None else ("null" if cursor.value is None else "value")
    # A sort key the list does not show (created_at) is read for the cursors only.
    hidden = () if field in LIST_FIELDS else (field,)

    def build() -> QuerySet[Any, Any]:
        movies = filter_movies(Movie.objects.all(), {name: _param(name) for name in present})
        if after is not None:
            value = None if after == "null" else Param("after_value", _movie_field(field))
            movies = movies.filter(
                _after(field, value, Param("after_id", _ID_FIELD), scan_descending, nulls_first)
            )
        movies = movies.order_by(*_ordering(field, scan_descending, nulls_first))
        return movies.values(*LIST_FIELDS, *hidden, genre_names=genre_names(OuterRef("pk")))

    values: dict[str, Any] = {name: filters[name] for name in present}
    if cursor is not None:
        values["after_value"], values["after_id"] = cursor.value, cursor.id
    rows = prepared.run(
        ("movie-list", field, scan_descending, nulls_first, after, present),
        build,
        values,
        using=router.db_for_read(Movie),
        limit=query.limit + 1,
        offset=query.offset if cursor is None else 0,
    )
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    if backwards:
        rows.reverse()
    sort_values = {row["id"]: row[field] for row in rows}
    for row in rows:
        for name in hidden:
            del row[name]
        # "genres" is the model's many-to-many: the ORM names the column otherwise.
        row["genres"] = row.pop("genre_names")

    def boundary(row: MovieSummary, backwards: bool) -> str:
        return Cursor(query.sort, sort_values[row["id"]], row["id"], backwards).encode()

    items = cast("list[MovieSummary]", rows)  # now the keys of the shape
    return Page.keyset(
        items, boundary, resumed=cursor is not None, backwards=backwards,
        has_more=has_more, offset=query.offset, limit=query.limit,
    )  # fmt: skip


def filtered_movies(query: MovieListQuery | MovieExportQuery) -> QuerySet[Movie]:
    """The films matching the list's filters, unordered and lazy: for callers that
    stream (movies.export) or paginate it themselves, never for a handler."""
    filters = {name: getattr(query, name) for name in MOVIE_FILTERS}
    present = {name: value for name, value in filters.items() if value is not None}
    return filter_movies(Movie.objects.all(), present)


def filter_movies(movies: QuerySet[Movie], filters: dict[str, Any]) -> QuerySet[Movie]:
    """``movies`` narrowed by every filter given: a value, or a Param standing for one."""
    if "genre" in filters:
        in_genre = Movie.genres.through.objects.filter(
            movie_id=OuterRef("pk"), genre__slug=filters["genre"]
        )
        movies = movies.filter(Exists(in_genre))
    if "person" in filters:
        credited = Credit.objects.filter(movie_id=OuterRef("pk"), person_id=filters["person"])
        movies = movies.filter(Exists(credited))
    if "year" in filters:
        movies = movies.filter(year=filters["year"])
    if "year_min" in filters:
        movies = movies.filter(year__gte=filters["year_min"])
    if "year_max" in filters:
        movies = movies.filter(year__lte=filters["year_max"])
    if "q" in filters:
        movies = _search(movies, filters["q"])
    return movies


def _movie_field(name: str) -> Field[Any, Any]:
    return cast("Field[Any, Any]", Movie._meta.get_field(name))


def _param(name: str) -> Param:
    return Param(name, _FILTER_FIELDS[name])


def _search(movies: QuerySet[Movie], text: str | Param) -> QuerySet[Movie]:
    if connection.vendor == "postgresql":
        from movies.search import movie_search_query, movie_search_vector

        return movies.annotate(search=movie_search_vector()).filter(search=movie_search_query(text))
    return movies.filter(title__icontains=text)


# A nullable sort field lists its NULLs last in both directions: "-rating" starts
# with the best-rated film, not with every unrated one. Each scan has an index:
# (rating, id) for "rating" and (rating DESC NULLS LAST, id DESC) for "-rating"
# (migration 0006), each walked backwards for the page before a cursor.
def _ordering(field: str, descending: bool, nulls_first: bool = False) -> tuple[OrderBy, OrderBy]:
    """The scan order: ``nulls_first`` only when walking a nullable field backwards."""
    if field not in NULLABLE_SORT_FIELDS:
        nulls = {}
    else:
        nulls = {"nulls_first": True} if nulls_first else {"nulls_last": True}
    if descending:
        return F(field).desc(**nulls), F("id").desc()
    return F(field).asc(**nulls), F("id").asc()


def sort_order(sort: str) -> tuple[OrderBy, OrderBy]:
    """The ORDER BY of an API sort key (``title``, ``-year``, ...), tie-broken by id."""
    return _ordering(sort.lstrip("-"), sort.startswith("-"))


def _after(
    field: str, value: Param | None, row_id: Param, descending: bool, nulls_first: bool
) -> Q:
    """Rows that come after (value, row_id) in the scan order; ``None``: a NULL value.
    ``nulls_first``: the scan meets the NULLs before every value (see _ordering)."""
    op = "lt" if descending else "gt"
    tie = Q(**{f"id__{op}": row_id})
    if value is None:
        null_tail = Q(**{f"{field}__isnull": True}) & tie
        return Q(**{f"{field}__isnull": False}) | null_tail if nulls_first else null_tail
    after = Q(**{f"{field}__{op}": value}) | (Q(**{field: value}) & tie)
    # The same set again with a plain bound in front: the planner cannot start an
    # index scan from the OR alone, so without it every page read the index from
    # its first entry and walking the list was quadratic (100k films: 95 s).
    after = Q(**{f"{field}__{op}e": value}) & after
    if field in NULLABLE_SORT_FIELDS and not nulls_first:
        after |= Q(**{f"{field}__isnull": True})
    return after


def genre_names(movie: Any) -> ValueArray:
    """The names of a film's genres, alphabetical, as one list column."""
    links = Movie.genres.through.objects.filter(movie_id=movie).order_by("genre__name")
    return ValueArray(links.values(value=F("genre__name")))


def get_movie(movie_id: int) -> MovieDetail | None:
    """A film with genres, directors and cast in billing order: one statement (the
    film, its genres and its credits aggregated in SQL)."""
    films = prepared.run(
        ("movie-detail",), _movie_detail, {"id": movie_id}, using=router.db_for_read(Movie)
    )
    if not films:
        return None
    movie = films[0]
    slugs, names = movie.pop("genre_slugs"), movie.pop("genre_names")
    movie["genres"] = [
        {"slug": slug, "name": name} for slug, name in zip(slugs, names, strict=True)
    ]
    movie["directors"] = []
    movie["cast"] = []
    for role, person_id, person_name, character in movie.pop("credit_rows"):
        if role == Credit.Role.DIRECTOR:
            movie["directors"].append({"id": person_id, "name": person_name})
        else:
            movie["cast"].append({"id": person_id, "name": person_name, "character": character})
    return cast(MovieDetail, movie)


def _movie_detail() -> QuerySet[Any, Any]:
    genres = Genre.objects.filter(movies=OuterRef("pk")).order_by("name")
    credits = Credit.objects.filter(movie=OuterRef("pk")).order_by("role", "billing_order", "id")
    # One round trip instead of two. Measured in one pinned process on the bench's
    # catalogue, 7 x 500 calls, minima of two runs: the bench's detail sample (films
    # with a cast) cost this process 150-201 µs against 183-243 with the credits as
    # a second statement, and PostgreSQL the same (140-160 µs); films 100-599 (few
    # credits) 141 against 238; a film with 59 credits the same either way.
    credit_rows = credits.values(
        value=JSONArray("role", "person_id", "person__name", "character_name")
    )
    return Movie.objects.filter(pk=Param("id", _ID_FIELD)).values(
        *DETAIL_FIELDS,
        genre_slugs=ValueArray(genres.values(value=F("slug"))),
        genre_names=ValueArray(genres.values(value=F("name"))),
        credit_rows=JsonRowArray(credit_rows),
    )
