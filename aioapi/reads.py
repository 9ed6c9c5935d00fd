"""Read routes: parse, then cache, then read, then answer.

A read route's handler takes its request already parsed: ``(request, query)``
for a list (the validated query model, its cursor decoded), ``(request, id)``
for one resource (its path variable, converted), ``(request, (id, query))`` for
a page of a resource's sub-collection. :func:`endpoint` makes the
aiohttp handler from the route's :class:`Inputs` and that handler: the parse
step first (a 400 or 404 costs no cache lookup and no thread hop), then the
response cache when the app keeps one and the route declares tags (:func:`serve`),
then the handler, which answers with :func:`cacheable` (the HTTP semantics of a
read are movies.conditional's).

The cache step. The key is the route name and what the request was parsed into
(the query model's values, the path's id, or both), so equivalent URLs share an entry;
a request that does not parse never gets there. A hit is answered on the loop,
with the stored body and ETag (or a 304), before the handler and its thread hop.
A miss runs the handler; a 200 is stored with the tags its route declares
(aioapi.routes). With read replicas, a miss reads nothing older than the
primary's position when the last invalidation was heard (the cache's floor), so
a lagging replica cannot put invalidated bytes back; a read whose consistency
token is past the floor skips the stored answer. When the cache is offline the
handler runs as if there were none.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from aiohttp import hdrs, web
from multidict import CIMultiDict
from pydantic import BaseModel

from aioapi.keys import CACHE, CACHE_TAGS, SETTINGS
from aioapi.response_cache import Entry, Key, TagRule
from movies import conditional
from movies.conditional import JSON_CONTENT_TYPE
from movies.parsing import parse_id
from movies.problems import not_found
from movies.schemas import NoQuery, QueryParameters, parse_query
from mymoviedb import routers

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A read route's handler: the request and what Inputs.parse made of it.
Read = Callable[[web.Request, Any], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Inputs:
    """What a read route takes from its request.

    ``query``: the model of its query string (:class:`NoQuery`: none taken, any
    given is a 400). ``path``: the path variable naming one resource, made a
    value by ``convert`` (``None``: no resource can have it, a 404 saying
    ``missing`` does not exist). A route with both (a page of a resource's
    sub-collection: a person's films) takes ``(value, query)``.
    """

    query: type[QueryParameters] = NoQuery
    path: str | None = None
    convert: Callable[[str], Hashable | None] = parse_id
    missing: str = "The resource"

    def parse(self, request: web.Request) -> Hashable:
        """The query model, or the path's value; a problem when either is invalid."""
        if self.path is None:
            return parse_query(self.query, request.query.items())
        if self.query is not NoQuery:
            # The query first, as a list's: a 400 before the path's 404.
            query = parse_query(self.query, request.query.items())
            return self._resource(request), query
        if request.query_string:  # NoQuery: any parameter given is a 400
            parse_query(self.query, request.query.items())
        return self._resource(request)

    def _resource(self, request: web.Request) -> Hashable:
        assert self.path is not None
        value = self.convert(request.match_info[self.path])
        if value is None:
            raise not_found(self.missing)
        return value


def endpoint(inputs: Inputs, read: Read, cache_as: str | None = None) -> Handler:
    """The aiohttp handler of a read route; ``cache_as``: the route's name, when its
    answers are cached (the app has a cache and the route tags)."""
    if cache_as is None and inputs.path is None:
        model = inputs.query

        async def parse_query_then_read(request: web.Request) -> web.StreamResponse:
            return await read(request, parse_query(model, request.query.items()))

        return parse_query_then_read
    if cache_as is None:

        async def parse_then_read(request: web.Request) -> web.StreamResponse:
            return await read(request, inputs.parse(request))

        return parse_then_read

    async def parse_then_cache(request: web.Request) -> web.StreamResponse:
        parsed = inputs.parse(request)
        return await serve(request, (cache_as, key_part(parsed)), read, parsed)

    return parse_then_cache


def cacheable(
    request: web.Request,
    body: bytes,
    tag: str | None = None,
    content_type: str = JSON_CONTENT_TYPE,
) -> web.Response:
    """A GET answer with its strong ETag (``tag``, or computed from ``body``): a 304
    when ``If-None-Match`` already has it."""
    tag = tag or conditional.etag(body)
    status, headers = conditional.read_answer(
        tag, request.headers.get(hdrs.IF_NONE_MATCH), request.app[SETTINGS].cache_control
    )
    if status == 304:
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type=content_type, headers=headers)


def key_part(parsed: Hashable) -> Hashable:
    """What identifies an answer of a route: a query model's values, sorted, so that
    the order of a query string's parameters does not matter; else the value."""
    if isinstance(parsed, BaseModel):
        return tuple(sorted(parsed.model_dump().items()))
    if isinstance(parsed, tuple):  # a resource and a query (Inputs with both)
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
