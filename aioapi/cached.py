"""``@cached``: serve a GET handler's answers from the worker's response cache.

The key is the route name and the validated query (``model_dump`` of its
pydantic model, or the path id), so equivalent URLs share an entry. A list
route's query string is validated here, once, and the handler receives the
model (``@cached_query``), whether or not the app has a cache. A hit is
answered here, on the loop, with the stored body and ETag (or a 304), before
the handler and its thread hop. A miss runs the handler; a 200 is stored with
the tags its route declares (aioapi.routes, checked at start-up against
:func:`is_cached`). With read replicas, a miss reads nothing older than the
primary's position when the last invalidation was heard (the cache's floor),
so a lagging replica cannot put invalidated bytes back; a read whose
consistency token is past the floor skips the stored answer. When the app has
no cache, or it is offline, the handler runs as if undecorated.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import cast

from aiohttp import hdrs, web
from multidict import CIMultiDict

from aioapi.keys import CACHE, CACHE_TAGS
from aioapi.response_cache import Entry, Key, TagRule
from aioapi.responses import answer_read
from movies.parsing import QueryModel, parse_id, parse_query
from movies.schemas import NoQuery
from mymoviedb import routers

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
QueryHandler = Callable[[web.Request, QueryModel], Awaitable[web.StreamResponse]]
# Set on a handler these decorators made, for the route table's start-up check.
MARK = "caches_answers"


def is_cached(handler: Handler) -> bool:
    """Whether ``handler`` stores its answers in the cache (and so needs tags)."""
    return getattr(handler, MARK, False) is True


def cached_query(model: type[QueryModel]) -> Callable[[QueryHandler[QueryModel]], Handler]:
    """Validate the query string into ``model`` (a 400 problem if it is bad), then
    cache the handler's 200 answers keyed by the validated query."""

    def decorate(handler: QueryHandler[QueryModel]) -> Handler:
        @functools.wraps(handler)
        async def serve(request: web.Request) -> web.StreamResponse:
            query = parse_query(model, request.query.items())

            def key() -> Key:
                return (_route(request), tuple(sorted(query.model_dump().items())))

            return await _serve(request, key, lambda request: handler(request, query))

        setattr(serve, MARK, True)
        return serve

    return decorate


def cached() -> Callable[[Handler], Handler]:
    """Cache the handler's 200 answers: a detail route keyed by its ``{id}``, a route
    with neither query nor id by its name."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def serve(request: web.Request) -> web.StreamResponse:
            if request.query_string:  # takes none: any given is a 400
                parse_query(NoQuery, request.query.items())
            if "id" not in request.match_info:
                return await _serve(request, lambda: (_route(request), ()), handler)
            resource_id = parse_id(request.match_info["id"])
            if resource_id is None:  # the handler's own 404
                return await handler(request)
            return await _serve(request, lambda: (_route(request), resource_id), handler)

        setattr(serve, MARK, True)
        return serve

    return decorate


async def _serve(
    request: web.Request, make_key: Callable[[], Key], handler: Handler
) -> web.StreamResponse:
    cache = request.app.get(CACHE)
    if cache is None or not cache.online:
        return await handler(request)
    key = make_key()
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
    response = await handler(_unconditional(request) if conditional else request)
    # The key's first part is the route, which names the rule tagging its answers.
    entry = _entry(response, request.app[CACHE_TAGS][key[0]])
    if entry is None:
        return response
    cache.put(key, entry, generation)
    return _answer(request, entry) if conditional else response


def _route(request: web.Request) -> str:
    # Every cached route has a name: aioapi.routes.check_routes refused start-up otherwise.
    return cast(str, request.match_info.route.name)


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
    return answer_read(request, entry.body, entry.etag, entry.content_type)
