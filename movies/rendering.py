"""Bodies of responses, byte-identical on both servers (their validators and
caching headers: movies.conditional).

Pagination links are relative references made of the query string alone
(``?limit=10&cursor=...``, RFC 3986 section 4.2): they resolve against whichever
path served the page, so ``/api/movies`` and ``/movies/`` return the same bytes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from pydantic import BaseModel

from movies.conditional import Representation
from movies.models import row_version
from movies.schemas import MovieListQuery, PeopleListQuery
from movies.shapes import MovieDetail, MovieList, MovieSummary, Page, PeopleList, PersonRef


def dumps(payload: Any) -> bytes:
    return orjson.dumps(payload)


def movie_detail_body(movie: MovieDetail) -> Representation:
    """A film's detail, carrying the version of its row (its ETag names it)."""
    return Representation.of(orjson.dumps(movie), row_version(movie["updated_at"]))


def movie_list_body(page: Page[MovieSummary], query: MovieListQuery) -> bytes:
    body: MovieList = {
        "items": page.items,
        "limit": query.limit,
        "next": _page_link(query, page.next_cursor, page.next_offset),
        "previous": _page_link(query, page.previous_cursor, page.previous_offset),
    }
    return orjson.dumps(body)


def people_list_body(page: Page[PersonRef], query: PeopleListQuery) -> bytes:
    body: PeopleList = {
        "items": page.items,
        "limit": query.limit,
        "next": _page_link(query, page.next_cursor, page.next_offset),
        "previous": _page_link(query, page.previous_cursor, page.previous_offset),
    }
    return dumps(body)


def _page_link(query: BaseModel, cursor: str | None, offset: int | None) -> str | None:
    # A neighbour by cursor, or by offset (0: the first page, no parameter), or none.
    if cursor is None and offset is None:
        return None
    params: dict[str, Any] = query.model_dump(exclude={"cursor", "offset"}, exclude_none=True)
    if cursor is not None:
        params["cursor"] = cursor
    elif offset:
        params["offset"] = offset
    return "?" + urlencode(params)
