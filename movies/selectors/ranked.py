"""The film list in relevance order (``sort=relevance``, a search's default).

movies.search ranks a bounded candidate set in one statement; this module
narrows it by the list's other filters, pages it (offset, or a keyset cursor
carrying the boundary film's score and id) and reads the page's rows in the
list's shape.
"""

from __future__ import annotations

from typing import Any, cast

from django.db import router
from django.db.models import OuterRef

from movies.cursors import Cursor
from movies.models import Movie
from movies.schemas import MovieListQuery
from movies.search import ranked
from movies.selectors.films import LIST_FIELDS, MOVIE_FILTERS, filter_movies, genre_names
from movies.shapes import MovieSummary, Page


def list_by_relevance(query: MovieListQuery) -> Page[MovieSummary]:
    """A page of the films ``query.q`` finds, best first (ties: lower id first)."""
    assert query.q is not None  # the schema refuses sort=relevance without q
    using = router.db_for_read(Movie)
    scored = ranked(query.q, using)
    filters = {
        name: getattr(query, name)
        for name in MOVIE_FILTERS
        if name != "q" and getattr(query, name) is not None
    }
    if filters and scored:
        among = Movie.objects.using(using).filter(id__in=[film_id for film_id, _ in scored])
        kept = set(filter_movies(among, filters).values_list("id", flat=True))
        scored = [row for row in scored if row[0] in kept]
    cursor = query.after
    if cursor is None:
        start = query.offset
        window = scored[start : start + query.limit + 1]
        has_more = len(window) > query.limit
        window = window[: query.limit]
    else:
        # Keys in list order: (-score, id) grows along the list.
        boundary = (-cursor.value, cursor.id)
        if cursor.backwards:
            before = [row for row in scored if (-row[1], row[0]) < boundary]
            has_more = len(before) > query.limit
            window = before[-query.limit :]
        else:
            after = [row for row in scored if (-row[1], row[0]) > boundary]
            has_more = len(after) > query.limit
            window = after[: query.limit]
    items = _rows([film_id for film_id, _ in window], using)
    scores = dict(window)

    def at(item: MovieSummary, backwards: bool) -> str:
        return Cursor("relevance", scores[item["id"]], item["id"], backwards).encode()

    return Page.keyset(
        items, at, resumed=cursor is not None,
        backwards=cursor is not None and cursor.backwards, has_more=has_more,
        offset=query.offset, limit=query.limit,
    )  # fmt: skip


def _rows(ids: list[int], using: str) -> list[MovieSummary]:
    """The list's rows of films ``ids``, in that order (a film deleted meanwhile: left out)."""
    if not ids:
        return []
    rows = (
        Movie.objects.using(using)
        .filter(id__in=ids)
        .values(*LIST_FIELDS, genre_names=genre_names(OuterRef("pk")))
    )
    by_id: dict[int, dict[str, Any]] = {}
    for row in rows:
        # "genres" is the model's many-to-many: the ORM names the column otherwise.
        row["genres"] = row.pop("genre_names")
        by_id[row["id"]] = row
    return [cast(MovieSummary, by_id[film_id]) for film_id in ids if film_id in by_id]
