"""The film list in relevance order (``sort=relevance``, a search's default).

A search for one plain word on PostgreSQL reads the ranked postings of that
word (movies.search): one prepared statement walks the primary key from the
word's best film, the page's rows joined, as the film list walks its sort
index; its cursors carry (score, id) and reach every film holding the word.
Any other search (more words, a year, an article, accents, other filters, a
word no title holds) has movies.search rank a bounded candidate set; this
module narrows that by the list's other filters, pages it (offset, or a keyset
cursor carrying the boundary film's score and id) and reads the page's rows.
"""

from __future__ import annotations

from typing import Any, cast

from django.db import connections, router
from django.db.models import BigIntegerField, F, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL

from movies import prepared
from movies.cursors import Page
from movies.models import Movie, SearchPosting
from movies.prepared import Param
from movies.schemas import MovieListQuery
from movies.search import posting_key, ranked
from movies.selectors.filters import LIST_FIELDS, MOVIE_FILTERS, filter_movies, genre_names
from movies.shapes import MovieSummary

_KEY = SearchPosting._meta.get_field("key")
_RANK = SearchPosting._meta.get_field("rank")
_ID = Movie._meta.get_field("id")


def list_by_relevance(query: MovieListQuery) -> Page[MovieSummary]:
    """A page of the films ``query.q`` finds, best first (ties: lower id first)."""
    assert query.q is not None  # the schema refuses sort=relevance without q
    using = router.db_for_read(Movie)
    filters = {
        name: getattr(query, name)
        for name in MOVIE_FILTERS
        if name != "q" and getattr(query, name) is not None
    }
    key = posting_key(query.q) if connections[using].vendor == "postgresql" else None
    if key is not None and not filters:
        page = _by_postings(query, key, using)
        if page is not None:
            return page
    scored = ranked(query.q, using)
    if filters and scored:
        among = Movie.objects.using(using).filter(id__in=[film_id for film_id, _ in scored])
        kept = set(filter_movies(among, filters).values_list("id", flat=True))
        scored = [row for row in scored if row[0] in kept]
    cursor = query.cursor
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
    edges = (scores[items[0]["id"]], scores[items[-1]["id"]]) if items else (None, None)
    return Page.keyset(
        items, sort="relevance", edges=edges, resumed=cursor is not None,
        backwards=cursor is not None and cursor.backwards, has_more=has_more,
        offset=query.offset, limit=query.limit,
    )  # fmt: skip


def _rows(ids: list[int], using: str) -> list[MovieSummary]:
    """The list's rows of films ``ids``, in that order (a film deleted meanwhile: left out)."""
    if not ids:
        return []
    rows: Any
    if connections[using].vendor == "postgresql":
        # One prepared statement for any number of ids (an array), not one per count.
        rows = prepared.run(("movie-rows-by-id",), _rows_by_id, {"ids": ids}, using=using)
    else:
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


def _rows_by_id() -> QuerySet[Any, Any]:
    """The list's rows of the films in the array Param ``ids`` (PostgreSQL), unordered."""
    from django.contrib.postgres.fields import ArrayField

    ids = RawSQL("SELECT unnest(%s::bigint[])", (Param("ids", ArrayField(BigIntegerField())),))
    return (
        Movie.objects.filter(id__in=ids)
        .order_by()
        .values(*LIST_FIELDS, genre_names=genre_names(OuterRef("pk")))
    )


def _by_postings(query: MovieListQuery, key: str, using: str) -> Page[MovieSummary] | None:
    """The page from the postings of ``key``; None if no title holds ``key`` (then
    the general search answers: it widens a word no title holds by its typos)."""
    cursor = query.cursor
    backwards = cursor is not None and cursor.backwards
    values: dict[str, Any] = {"key": key}
    if cursor is not None:
        values["rank"], values["after_id"] = -cursor.value, cursor.id
    rows = prepared.run(
        ("movie-search-postings", cursor is not None, backwards),
        lambda: _postings_page(resumed=cursor is not None, backwards=backwards),
        values,
        using=using,
        limit=query.limit + 1,
        offset=query.offset if cursor is None else 0,
    )
    if not rows and (
        (cursor is None and not query.offset)
        or not SearchPosting.objects.using(using).filter(key=key).exists()
    ):
        return None
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    if backwards:
        rows.reverse()
    scores = {}
    for row in rows:
        scores[row["id"]] = -row.pop("rank")
        row["genres"] = row.pop("genre_names")
    edges = (scores[rows[0]["id"]], scores[rows[-1]["id"]]) if rows else (None, None)
    return Page.keyset(
        cast("list[MovieSummary]", rows), sort="relevance", edges=edges,
        resumed=cursor is not None, backwards=backwards, has_more=has_more,
        offset=query.offset, limit=query.limit,
    )  # fmt: skip


def _postings_page(*, resumed: bool, backwards: bool) -> QuerySet[Any, Any]:
    """The films under Param ``key`` best first (rank, then id), after (or before,
    ``backwards``) the boundary (Param ``rank``, Param ``after_id``) if ``resumed``."""
    # filter() before annotate(): the score is read from the join the filter made.
    movies = Movie.objects.filter(search_postings__key=Param("key", _KEY)).annotate(
        rank=F("search_postings__rank")
    )
    if resumed:
        rank, row_id = Param("rank", _RANK), Param("after_id", _ID)
        op = "lt" if backwards else "gt"
        # The plain bound first: the index scan starts there (as movies.selectors.films).
        movies = movies.filter(
            Q(**{f"rank__{op}e": rank}),
            Q(**{f"rank__{op}": rank}) | Q(rank=rank, **{f"id__{op}": row_id}),
        )
    order = ("-rank", "-id") if backwards else ("rank", "id")
    return movies.order_by(*order).values(
        *LIST_FIELDS, "rank", genre_names=genre_names(OuterRef("pk"))
    )
