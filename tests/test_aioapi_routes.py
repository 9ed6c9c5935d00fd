"""aioapi.routes: one table for the router, the OpenAPI document and the cache,
and the start-up check that refuses a table they could not all serve."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from aioapi.app import create_app
from aioapi.reads import Inputs
from aioapi.response_cache import always
from aioapi.routes import ROUTES, Route, check_routes
from aioapi.settings import ApiSettings
from movies.schemas import PeopleListQuery


def changed(which: str, /, **changes: Any) -> tuple[Route, ...]:
    """ROUTES with the route called ``which`` changed."""
    return tuple(
        dataclasses.replace(route, **changes) if route.name == which else route for route in ROUTES
    )


def added(route: Route) -> tuple[Route, ...]:
    return (*ROUTES, route)


def named(name: str) -> Route:
    return next(route for route in ROUTES if route.name == name)


async def plain(request: web.Request) -> web.Response:
    return web.Response()


def test_every_route_is_served_and_documented_once(api_settings: ApiSettings) -> None:
    check_routes(ROUTES)
    app = create_app(api_settings)
    served = [
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None and route.name != "docs-static"
    ]
    assert sorted(served) == sorted((route.method, route.doc_path) for route in ROUTES)
    assert len(set(served)) == len(served)


@pytest.mark.parametrize(
    ("table", "fault"),
    [
        # Tags on a route that parses nothing: the cache would have no key for it.
        (lambda: changed("events", cache_tags=always("x")), "only a read route"),
        # A cached route without a name has no key for its entries.
        (lambda: changed("genre-list", name=None), "a GET with a name"),
        (lambda: added(Route("POST", "/api/x", plain, named("genre-list").doc, name="x",
                             inputs=Inputs(), cache_tags=always("x"))), "a GET with a name"),
        # A route naming one resource by a variable its path does not have.
        (lambda: changed("person-detail", inputs=Inputs(path="slug")), "not in its path"),
        # A query its document does not list (and one it lists but does not take).
        (lambda: changed("person-detail", inputs=Inputs(PeopleListQuery, path="id")),
         "query parameters differ"),
        (lambda: changed("person-films", inputs=Inputs(path="id")), "query parameters differ"),
        # A path variable the document does not list.
        (lambda: changed("genre-list", path="/api/genres/{id}"), "parameters differ"),
        # The same operation twice.
        (lambda: added(dataclasses.replace(named("healthz"), name="again")), "declared twice"),
    ],
)  # fmt: skip
def test_a_table_the_cache_or_the_document_cannot_serve_is_refused(
    table: Callable[[], tuple[Route, ...]], fault: str
) -> None:
    with pytest.raises(ValueError, match=f"The route table is inconsistent: .*{fault}"):
        check_routes(table())
