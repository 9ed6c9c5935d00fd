"""Bodies and validators of responses, byte-identical on both servers.

Pagination links are relative references made of the query string alone
(``?limit=10&cursor=...``, RFC 3986 section 4.2): they resolve against whichever
path served the page, so ``/api/movies`` and ``/movies/`` return the same bytes.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode

import orjson
from pydantic import BaseModel

from movies.schemas import MovieListQuery, PeopleListQuery
from movies.shapes import MovieList, MovieSummary, Page, PeopleList, PersonRef

JSON_CONTENT_TYPE = "application/json"
# What no cache may keep: probes, written answers, exports, event streams, outage pages.
NO_STORE = "no-store"


def dumps(payload: Any) -> bytes:
    return orjson.dumps(payload)


def movie_list_body(page: Page[MovieSummary], query: MovieListQuery) -> bytes:
    body: MovieList = {
        "items": page.items,
        "limit": query.limit,
        "next": _page_link(query, page.next_cursor, page.next_offset),
        "previous": _page_link(query, page.previous_cursor, page.previous_offset),
    }
    return dumps(body)


def people_list_body(page: Page[PersonRef], query: PeopleListQuery) -> bytes:
    body: PeopleList = {
        "items": page.items,
        "limit": query.limit,
        "next": _page_link(query, page.next_cursor, page.next_offset),
        "previous": _page_link(query, page.previous_cursor, page.previous_offset),
    }
    return dumps(body)


def _page_link(query: BaseModel, cursor: str | None, offset: int | None) -> str | None:
    if cursor is not None:
        return _query_link(query, cursor=cursor, offset=None)
    if offset is not None:
        return _query_link(query, cursor=None, offset=offset)
    return None


def _query_link(query: BaseModel, *, cursor: str | None, offset: int | None) -> str:
    params: dict[str, Any] = query.model_dump(exclude={"cursor", "offset"}, exclude_none=True)
    if offset:
        params["offset"] = offset
    if cursor is not None:
        params["cursor"] = cursor
    return "?" + urlencode(params)


def etag(body: bytes) -> str:
    """A strong validator: the digest of the exact bytes served."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def etag_matches(header: str | None, current: str) -> bool:
    """RFC 9110 ``If-None-Match``: weak comparison against a list of tags or ``*``."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == current for tag in header.split(","))
