"""The app factory of the API process.

Call ``django.setup()`` first (the entry points do), then ``create_app()``.
Every resource the app holds is opened and closed in :func:`_resources`, one
``cleanup_ctx`` generator, so start-up and shutdown read top to bottom.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp_cors
from aiohttp import web

from aioapi.access_log import JsonAccessLogger
from aioapi.db import OrmBridge
from aioapi.handlers.events import close_streams
from aioapi.handlers.meta import docs_page, openapi_body
from aioapi.keys import (
    AUTH_LIMITER,
    BRIDGE,
    DOCS_HTML,
    EXPORT_SLOTS,
    METRICS,
    OPENAPI_BODY,
    SETTINGS,
)
from aioapi.listener import open_change_listener
from aioapi.metrics import Metrics
from aioapi.middlewares import metrics_middleware, problem_middleware
from aioapi.ratelimit import FailedAuthLimiter
from aioapi.routes import route_table
from aioapi.settings import ApiSettings
from movies.export_slots import ExportSlots

logger = logging.getLogger(__name__)

CORS_REQUEST_HEADERS = ("Authorization", "Content-Type", "If-Match", "If-None-Match")
CORS_RESPONSE_HEADERS = ("ETag", "Location", "Retry-After", "WWW-Authenticate")


def create_app(
    settings: ApiSettings | None = None, *, bridge: OrmBridge | None = None
) -> web.Application:
    """Build the API application.

    ``settings`` defaults to the environment's; ``bridge`` lets a test hand in
    its own (the app closes it all the same on cleanup).
    """
    settings = settings or ApiSettings.from_env()
    app = web.Application(
        middlewares=[metrics_middleware, problem_middleware],
        client_max_size=settings.max_body_bytes,
        handler_args=_access_log_args(settings),
    )
    app[SETTINGS] = settings
    app[OPENAPI_BODY] = openapi_body()
    docs_html, docs_static = docs_page()
    app[DOCS_HTML] = docs_html
    app.add_routes(route_table(docs_static))
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
            threads=settings.db_threads,
            max_pending=settings.db_max_pending,
            funnel=settings.db_funnel,
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


def _access_log_args(settings: ApiSettings) -> dict[str, Any]:
    # handler_args override what run_app or the Gunicorn worker pass, so both
    # entry points log the same way.
    if settings.access_log == "off":
        return {"access_log": None}
    if settings.access_log == "json":
        return {
            "access_log_class": JsonAccessLogger,
            "access_log": logging.getLogger("aiohttp.access"),
        }
    return {}


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
