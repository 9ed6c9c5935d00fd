"""The app factory of the API process.

Call ``django.setup()`` first (the entry points do), then ``create_app()``.
Every resource the app holds is opened and closed in :func:`_resources`, one
``cleanup_ctx`` generator, so start-up and shutdown read top to bottom.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp_cors
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from aioapi.access_log import logger_class
from aioapi.consistency import TOKEN_HEADER, consistency_middleware
from aioapi.db import OrmBridge
from aioapi.handlers.events import close_streams
from aioapi.handlers.meta import docs_page
from aioapi.keys import (
    AUTH_LIMITER,
    BRIDGE,
    CACHE_TAGS,
    DOCS_HTML,
    EXPORT_SLOTS,
    METRICS,
    OPENAPI_BODY,
    SETTINGS,
)
from aioapi.listener import open_change_listener
from aioapi.metrics import Metrics
from aioapi.middlewares import metrics_middleware, problem_middleware
from aioapi.openapi import openapi_body
from aioapi.protocol import BODY_TIMEOUT, HEADER_TIMEOUT, PARSER_LIMITS
from aioapi.ratelimit import FailedAuthLimiter
from aioapi.routes import ROUTES, cache_tags, check_routes, route_definitions
from aioapi.settings import ApiSettings
from movies.conditional import vary_with
from movies.export_slots import ExportSlots
from movies.headers import SECURITY_HEADERS
from mymoviedb.routers import replica_aliases

logger = logging.getLogger(__name__)

CORS_REQUEST_HEADERS = (
    "Authorization", "Content-Type", "If-Match", "If-None-Match", TOKEN_HEADER,
)  # fmt: skip
CORS_RESPONSE_HEADERS = ("ETag", "Location", "Retry-After", "WWW-Authenticate", TOKEN_HEADER)
CORS_VARY = "Origin"


def create_app(
    settings: ApiSettings | None = None, *, bridge: OrmBridge | None = None
) -> web.Application:
    """Build the API application.

    ``settings`` defaults to the environment's; ``bridge`` lets a test hand in
    its own (the app closes it all the same on cleanup).
    """
    settings = settings or ApiSettings.from_env()
    app = web.Application(
        middlewares=_middlewares(),
        client_max_size=settings.max_body_bytes,
        handler_args=_handler_args(settings),
    )
    app[SETTINGS] = settings
    app[HEADER_TIMEOUT] = settings.header_timeout_seconds
    app[BODY_TIMEOUT] = settings.body_timeout_seconds
    check_routes(ROUTES)
    app[OPENAPI_BODY] = openapi_body(ROUTES)
    app[CACHE_TAGS] = cache_tags(ROUTES)
    docs_html, docs_static = docs_page()
    app[DOCS_HTML] = docs_html
    app.add_routes(route_definitions(ROUTES, docs_static, cache=settings.cache))
    if settings.cors_origins:
        _enable_cors(app, settings.cors_origins)
    app.cleanup_ctx.append(_resources(bridge))
    # Before in-flight requests are awaited: event streams would never finish.
    app.on_shutdown.append(close_streams)
    return app


def _resources(given: OrmBridge | None) -> Callable[[web.Application], AsyncIterator[None]]:
    async def resources(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        bridge = given or OrmBridge(
            threads=settings.db_threads, max_pending=settings.db_max_pending
        )
        app[BRIDGE] = bridge
        app[EXPORT_SLOTS] = ExportSlots(settings.export_limit)
        app[METRICS] = Metrics(bridge, app[EXPORT_SLOTS])
        app[AUTH_LIMITER] = FailedAuthLimiter(settings.auth_failures_per_minute)
        logger.info(
            "aioapi ready: %d ORM threads, at most %d pending calls, export slots: %d",
            bridge.threads,
            bridge.max_pending,
            settings.export_limit,
        )
        # The response cache and the change feed, kept fresh by LISTEN (PostgreSQL).
        listener = open_change_listener(app)
        yield
        if listener is not None:
            await listener.stop()
        # Runs after in-flight requests have finished (or shutdown_timeout).
        await asyncio.to_thread(bridge.close)

    return resources


def _handler_args(settings: ApiSettings) -> dict[str, Any]:
    # handler_args override what aioapi.protocol.ApiAppRunner or the Gunicorn worker
    # pass, so both entry points parse with the same limits and log the same way.
    if settings.access_log == "off":
        return {**PARSER_LIMITS, "access_log": None}
    # Text keeps the access log and format an entry point gives (Gunicorn's config).
    log_class = logger_class(settings.access_log, tuple(settings.trusted_proxies))
    if settings.access_log == "json":
        return {
            **PARSER_LIMITS,
            "access_log_class": log_class,
            "access_log": logging.getLogger("aiohttp.access"),
        }
    return {**PARSER_LIMITS, "access_log_class": log_class}


def _enable_cors(app: web.Application, origins: tuple[str, ...]) -> None:
    options = aiohttp_cors.ResourceOptions(
        allow_headers=CORS_REQUEST_HEADERS,
        expose_headers=CORS_RESPONSE_HEADERS,
        allow_methods=["GET", "HEAD", "POST", "PATCH", "DELETE"],
        max_age=600,
    )
    cors = aiohttp_cors.setup(app, defaults={origin: options for origin in origins})
    for route in list(app.router.routes()):
        if not isinstance(route.resource, web.StaticResource):
            cors.add(route)
    # Each path's methods once CORS has added its OPTIONS, as a 405's Allow lists them
    # (a path's GET and POST may sit on two resources of the same template).
    methods: dict[str, set[str]] = {}
    resources: set[web.AbstractResource] = set()
    for route in app.router.routes():
        if route.resource is not None and not isinstance(route.resource, web.StaticResource):
            methods.setdefault(route.resource.canonical, set()).add(route.method)
            resources.add(route.resource)
    allow = {path: ", ".join(sorted(names)) for path, names in methods.items()}
    app.middlewares.append(_plain_options(allow))
    app.on_response_prepare.append(_vary_on_origin(frozenset(resources)))


def _plain_options(allow: dict[str, str]) -> Middleware:
    """Answer an OPTIONS that is not a CORS preflight (RFC 9110: the methods allowed).

    aiohttp_cors owns OPTIONS on every CORS resource and refuses anything but a
    preflight with 403, though a 405's ``Allow`` lists OPTIONS there. Installed only
    when CORS is on; other methods pass after one comparison.
    """

    @web.middleware
    async def plain_options(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == hdrs.METH_OPTIONS and not _is_preflight(request):
            resource = request.match_info.route.resource
            methods = allow.get(resource.canonical) if resource is not None else None
            if methods is not None:
                return web.Response(status=204, headers={**SECURITY_HEADERS, hdrs.ALLOW: methods})
        return await handler(request)

    return plain_options


def _is_preflight(request: web.Request) -> bool:
    # Fetch's definition: an OPTIONS with Origin and Access-Control-Request-Method.
    headers = request.headers
    return hdrs.ORIGIN in headers and hdrs.ACCESS_CONTROL_REQUEST_METHOD in headers


def _vary_on_origin(
    resources: frozenset[web.AbstractResource],
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """Add ``Vary: Origin`` to every answer of a CORS resource.

    Its ``Access-Control-*`` headers depend on the request's Origin (present, allowed
    or not), so a shared cache must key on it, also for a request without Origin, or
    it would hand one origin's answer to another. Merged into any ``Vary`` already set.
    """

    async def vary(request: web.Request, response: web.StreamResponse) -> None:
        if request.match_info.route.resource in resources:
            response.headers[hdrs.VARY] = vary_with(response.headers.get(hdrs.VARY), CORS_VARY)

    return vary


def _middlewares() -> list[Middleware]:
    # Consistency tokens route reads among replicas: without replicas every read is the
    # primary's, and the middleware would only cost each request a coroutine layer.
    replicated = [consistency_middleware] if replica_aliases() else []
    return [metrics_middleware, problem_middleware, *replicated]
