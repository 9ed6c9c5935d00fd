"""The film reads: a page of the list, the filtered set the export streams, and
one film's detail, each one statement (see the package's docstring).
"""

from __future__ import annotations

from typing import Any, cast

import orjson
from django.db import router
from django.db.models import (
    Exists,
    ExpressionWrapper,
    F,
    Field,
    OrderBy,
    OuterRef,
    Q,
    QuerySet,
    TextField,
)
from django.db.models.functions import JSONArray

from movies import prepared
from movies.cursors import Page
from movies.expressions import JsonRowArray, RowAfter, SortKey
from movies.models import RATING_LAST, RATING_LAST_DESC, Credit, Genre, Movie
from movies.prepared import Param
from movies.schemas import MovieExportQuery, MovieListQuery
from movies.selectors.filters import LIST_FIELDS, MOVIE_FILTERS, filter_movies, filter_param
from movies.selectors.ranked import list_by_relevance
from movies.shapes import MovieDetail, MovieSummary

DETAIL_FIELDS = (
    "id", "title", "year", "release_date", "runtime_minutes", "rating", "synopsis",
    "wikipedia_slug", "poster_url", "created_at", "updated_at",
)  # fmt: skip
_ID_FIELD = Movie._meta.get_field("id")


def list_movies(query: MovieListQuery) -> Page[MovieSummary]:
    """A page of films in ``query.sort`` order, by offset or by keyset cursor (stable
    under inserts). One statement, reading the film table alone: each row carries
    its genre names (``Movie.genre_list``). A search without a sort is in relevance
    order: movies.selectors.ranked's."""
    if query.sort == "relevance":
        return list_by_relevance(query)
    cursor = query.cursor
    field = query.sort.lstrip("-")
    descending = query.sort.startswith("-")
    backwards = cursor is not None and cursor.backwards
    scan_descending = descending != backwards
    filters = {name: getattr(query, name) for name in MOVIE_FILTERS}
    present = tuple(name for name, value in filters.items() if value is not None)
    # A sort key the list does not show (created_at) is read for the cursors only.
    hidden = () if field in LIST_FIELDS else (field,)

    # A person's films in an order their credits keep: read through those credits.
    by_credit = "person" in present and field in _CREDIT_KEYS

    def build() -> QuerySet[Any, Any]:
        params = {name: filter_param(name) for name in present}
        if by_credit:
            del params["person"]
        movies = filter_movies(Movie.objects.all(), params)
        key: F | SortKey = sort_key(field, descending)
        row_id = F("id")
        bound = (Param("after_value", _movie_field(field)), Param("after_id", _ID_FIELD))
        if by_credit:
            key, row_id = F(f"credits__{_CREDIT_KEYS[field]}"), F("credits__movie_id")
            after = RowAfter((key, row_id), bound, descending=scan_descending)
            movies = movies.filter(_credited(filter_param("person"), after if cursor else None))
        elif cursor is not None:
            movies = movies.filter(RowAfter((key, row_id), bound, descending=scan_descending))
        order = (key.desc(), row_id.desc()) if scan_descending else (key.asc(), row_id.asc())
        # The genre names as the JSON text they are stored as: decoded below, where
        # the row gets its "genres", one orjson call each (no converter per row).
        genre_json = ExpressionWrapper(F("genre_list"), output_field=TextField())
        return movies.order_by(*order).values(*LIST_FIELDS, *hidden, genre_json=genre_json)

    values: dict[str, Any] = {name: filters[name] for name in present}
    if cursor is not None:
        values["after_value"] = _key_value(field, descending, cursor.value)
        values["after_id"] = cursor.id
    rows = prepared.run(
        ("movie-list", field, scan_descending, descending, cursor is not None, present),
        build,
        values,
        using=router.db_for_read(Movie),
        limit=query.limit + 1,
        offset=query.offset if cursor is None else 0,
        plan_each=bool(present),  # how many films a filter keeps decides the plan
    )
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    if backwards:
        rows.reverse()
    edges = (rows[0][field], rows[-1][field]) if rows else (None, None)
    for row in rows:
        for name in hidden:
            del row[name]
        # "genres" is the model's many-to-many: the list's copy has its own name.
        row["genres"] = orjson.loads(row.pop("genre_json"))
    items = cast("list[MovieSummary]", rows)  # now the keys of the shape
    return Page.keyset(
        items, sort=query.sort, edges=edges, resumed=cursor is not None, backwards=backwards,
        has_more=has_more, offset=query.offset, limit=query.limit,
    )  # fmt: skip


# Sorts whose key a credit holds (the film's own, copied by migration 0013's
# triggers), with an index from the person to it: credit_person_title,
# credit_person_movie.
_CREDIT_KEYS = {"title": "movie_title", "id": "movie_id"}


def _credited(person: Param, after: RowAfter | None) -> Q:
    """The films crediting ``person``, joined to one credit each, which a page is read
    in the order of (one range of the person's credits instead of a walk of every
    film in the sort's order asking each whether it credits them: ~10,000 films at
    1M for a page of the person credited most). One condition, so that its parts
    refer to one join. A person is credited at most twice in a film (as cast and as
    director): the director's credit counts only where there is no cast credit."""
    cast = Credit.objects.filter(movie_id=OuterRef("pk"), person_id=person, role=Credit.Role.CAST)
    condition = Q(credits__person_id=person) & (
        Q(credits__role=Credit.Role.CAST) | Q(~Exists(cast))
    )
    return condition if after is None else condition & Q(after)


def filtered_movies(query: MovieListQuery | MovieExportQuery) -> QuerySet[Movie]:
    """The films matching the list's filters, unordered and lazy: for callers that
    stream (movies.export) or paginate it themselves, never for a handler."""
    filters = {name: getattr(query, name) for name in MOVIE_FILTERS}
    present = {name: value for name, value in filters.items() if value is not None}
    return filter_movies(Movie.objects.all(), present)


def _movie_field(name: str) -> Field[Any, Any]:
    return cast("Field[Any, Any]", Movie._meta.get_field(name))


# A nullable sort field lists its NULLs last in both directions: "-rating" starts
# with the best-rated film, not with every unrated one. Its key is an expression
# that is never NULL (movies.expressions.SortKey), with an index per direction
# (movies.models.Movie.Meta.indexes), each walked backwards for the page before a
# cursor; every other sort field is NOT NULL and keyed by its (field, id) index.
_NULLS_LAST = {"rating": (RATING_LAST, RATING_LAST_DESC)}


def sort_key(field: str, descending: bool) -> F | SortKey:
    """What the list orders by for a sort field (then by id, in the same direction)."""
    if field in _NULLS_LAST:
        ascending_last, descending_last = _NULLS_LAST[field]
        return SortKey(field, descending_last if descending else ascending_last)
    return F(field)


def _key_value(field: str, descending: bool, value: Any) -> Any:
    """A cursor's value of ``field`` as its sort key's value (NULL: past the last)."""
    if value is None and field in _NULLS_LAST:
        return float(_NULLS_LAST[field][1 if descending else 0])
    return value


def sort_order(sort: str) -> tuple[OrderBy, OrderBy]:
    """The ORDER BY of an API sort key (``title``, ``-year``, ...), tie-broken by id."""
    field, descending = sort.lstrip("-"), sort.startswith("-")
    key = sort_key(field, descending)
    if descending:
        return key.desc(), F("id").desc()
    return key.asc(), F("id").asc()


def get_movie(movie_id: int) -> MovieDetail | None:
    """A film with genres, directors and cast in billing order: one statement (the
    film, its genres and its credits aggregated in SQL)."""
    films = prepared.run(
        ("movie-detail",), _movie_detail, {"id": movie_id}, using=router.db_for_read(Movie)
    )
    if not films:
        return None
    movie = films[0]
    movie["genres"] = [{"slug": slug, "name": name} for slug, name in movie.pop("genre_rows")]
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
    # In the order of the index credit_movie_billing: one range scan, no sort.
    credits = Credit.objects.filter(movie=OuterRef("pk")).order_by("role", "billing_order", "id")
    # One round trip instead of two: cheaper for this process and the same for
    # PostgreSQL (bench/results/2026-12-06-lean-16-threads-one-statement-detail/).
    credit_rows = credits.values(
        value=JSONArray("role", "person_id", "person__name", "character_name")
    )
    # order_by(): one row, and the model's default order would add a sort node.
    return (
        Movie.objects.filter(pk=Param("id", _ID_FIELD))
        .order_by()
        .values(
            *DETAIL_FIELDS,
            genre_rows=JsonRowArray(genres.values(value=JSONArray("slug", "name"))),
            credit_rows=JsonRowArray(credit_rows),
        )
    )
