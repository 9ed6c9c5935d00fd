"""Typed application state: each value the app carries, under its own ``web.AppKey``.

All are here but the two the connection protocol reads (``HEADER_TIMEOUT``,
``BODY_TIMEOUT``): aioapi.protocol declares those itself, because it must import
without Django (bench's raw-pool server runs it), and this module imports the
bridge, which needs Django.
"""

from __future__ import annotations

from aiohttp import web

from aioapi.changefeed import ChangeFeed
from aioapi.db import OrmBridge
from aioapi.metrics import Metrics
from aioapi.ratelimit import FailedAuthLimiter
from aioapi.response_cache import ResponseCache, TagRule
from aioapi.settings import ApiSettings
from movies.export_slots import ExportSlots

SETTINGS = web.AppKey("settings", ApiSettings)
BRIDGE = web.AppKey("bridge", OrmBridge)
METRICS = web.AppKey("metrics", Metrics)
AUTH_LIMITER = web.AppKey("auth_limiter", FailedAuthLimiter)
# The cap on running exports of this process (API_EXPORT_MAX_CONCURRENT).
EXPORT_SLOTS = web.AppKey("export_slots", ExportSlots)
# The OpenAPI document and the docs page never change while the process runs.
OPENAPI_BODY = web.AppKey("openapi_body", bytes)
DOCS_HTML = web.AppKey("docs_html", bytes)
# PostgreSQL only (aioapi.listener): the response cache, set when API_CACHE is on,
# and the change feed of GET /api/events.
CACHE = web.AppKey("cache", ResponseCache)
# The tag rule of each cached route, by route name (from aioapi.routes' table).
CACHE_TAGS = web.AppKey[dict[str, TagRule]]("cache_tags")
CHANGE_FEED = web.AppKey("change_feed", ChangeFeed)
