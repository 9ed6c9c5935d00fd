"""Read routes: parse, then cache, then read.

A read route's handler takes its request already parsed: ``(request, query)``
for a list (the validated query model, its cursor decoded), ``(request, id)``
for one resource (its path variable, converted), ``(request, (id, query))`` for
a page of a resource's sub-collection. :func:`endpoint` makes the
aiohttp handler from the route's :class:`Inputs` and that handler: the parse
step first (a 400 or 404 costs no cache lookup and no thread hop), then the
cache (aioapi.cached) when the app keeps one and the route declares tags, then
the handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from aioapi import cached
from movies.parsing import parse_id, parse_query
from movies.problems import not_found
from movies.schemas import NoQuery, QueryParameters

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
        return await cached.serve(request, (cache_as, cached.key_part(parsed)), read, parsed)

    return parse_then_cache
