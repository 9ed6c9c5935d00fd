"""The response cache in front of a read route's handler (aioapi.reads puts it there).

The key is the route name and what the request was parsed into (the query
model's values, or the path's id), so equivalent URLs share an entry; parsing
is done before this, by aioapi.reads, and a request that does not parse never
gets here. A hit is answered here, on the loop, with the stored body and ETag
(or a 304), before the handler and its thread hop. A miss runs the handler; a
200 is stored with the tags its route declares (aioapi.routes). With read
replicas, a miss reads nothing older than the primary's position when the last
invalidation was heard (the cache's floor), so a lagging replica cannot put
invalidated bytes back; a read whose consistency token is past the floor skips
the stored answer. When the cache is offline the handler runs as if there were
none.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from aiohttp import hdrs, web
from multidict import CIMultiDict
from pydantic import BaseModel

from aioapi.keys import CACHE, CACHE_TAGS
from aioapi.response_cache import Entry, Key, TagRule
from aioapi.responses import cacheable
from mymoviedb import routers

Read = Callable[[web.Request, Any], Awaitable[web.StreamResponse]]


def key_part(parsed: Hashable) -> Hashable:
    """What identifies an answer of a route: a query model's values, sorted, so that
    the order of a query string's parameters does not matter; else the value."""
    if isinstance(parsed, BaseModel):
        return tuple(sorted(parsed.model_dump().items()))
    if isinstance(parsed, tuple):  # a resource and a query (aioapi.reads.Inputs)
        return tuple(key_part(part) for part in parsed)
    return parsed


async def serve(request: web.Request, key: Key, read: Read, parsed: Any) -> web.StreamResponse:
    """The stored answer of ``key``, or ``read(request, parsed)``'s, stored if a 200."""
    cache = request.app.get(CACHE)
    if cache is None or not cache.online:
        return await read(request, parsed)
    # A consistency token past what the cache has heard of may name a write whose
    # invalidation has not arrived yet: answer it from the database.
    token = routers.min_lsn()
    entry = cache.get(key) if token is None or token <= cache.floor_lsn else None
    if entry is not None:
        return _answer(request, entry)
    generation = cache.generation
    # What this miss stores must not be older than the last invalidation.
    routers.require_lsn(cache.floor_lsn)
    conditional = hdrs.IF_NONE_MATCH in request.headers
    # Ask for the whole body even when the client holds it: it fills the cache.
    response = await read(_unconditional(request) if conditional else request, parsed)
    # The key's first part is the route, which names the rule tagging its answers.
    entry = _entry(response, request.app[CACHE_TAGS][key[0]])
    if entry is None:
        return response
    cache.put(key, entry, generation)
    return _answer(request, entry) if conditional else response


def _unconditional(request: web.Request) -> web.Request:
    headers = CIMultiDict(request.headers)
    del headers[hdrs.IF_NONE_MATCH]
    return request.clone(headers=headers)


def _entry(response: web.StreamResponse, tags_of: TagRule) -> Entry | None:
    if response.status != 200 or not isinstance(response, web.Response):
        return None
    body, tag = response.body, response.headers.get(hdrs.ETAG)
    if not isinstance(body, bytes) or tag is None:
        return None
    # Plain bytes (a movies.conditional.Representation is a subclass, which orjson,
    # reading the tags, refuses); a no-op for a body that already is.
    body = bytes(body)
    return Entry(body, tag, response.content_type, tags_of(body))


def _answer(request: web.Request, entry: Entry) -> web.Response:
    return cacheable(request, entry.body, entry.etag, entry.content_type)
