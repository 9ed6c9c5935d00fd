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
from movies.schemas import FilmographyQuery, MovieListQuery, PeopleListQuery
from movies.shapes import (
    Filmography,
    MovieDetail,
    MovieList,
    MovieSummary,
    Page,
    PeopleList,
    PersonDetail,
    PersonFilms,
    PersonRef,
)

# What the person's detail embeds: the films page a client would get first.
FIRST_FILMS_PAGE = FilmographyQuery.model_validate({})


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


def person_detail_body(found: PersonFilms) -> bytes:
    """A person with the first page of their filmography and a link to the next.

    The link is relative to the person's URL (``42/films?...`` from ``.../people/42``),
    so it resolves on both servers, whose person paths differ only in their prefix.
    """
    person_id = found.person["id"]
    link = _page_link(FIRST_FILMS_PAGE, found.page.next_cursor, None)
    body: PersonDetail = {
        "id": person_id,
        "name": found.person["name"],
        "filmography": found.page.items,
        "filmography_next": None if link is None else f"{person_id}/films{link}",
    }
    return dumps(body)


def filmography_body(found: PersonFilms, query: FilmographyQuery) -> bytes:
    """A page of a person's filmography; its links are query strings, as a list's."""
    page = found.page
    body: Filmography = {
        "items": page.items,
        "limit": query.limit,
        "next": _page_link(query, page.next_cursor, None),
        "previous": _page_link(query, page.previous_cursor, None),
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
