"""Probes and metrics: ``/healthz``, ``/readyz``, ``/metrics``.

Liveness never touches the database (a database outage must not get healthy
processes restarted); readiness does, with a short timeout, so a load balancer
stops sending traffic to a process that cannot serve it (at once while the
bridge's breaker knows the database is down).
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from aioapi.db import ping_primary
from aioapi.keys import BRIDGE, METRICS, SETTINGS
from aioapi.responses import uncached
from movies.problems import database_too_slow
from movies.rendering import dumps


async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: the process is up and its loop answers."""
    return uncached(dumps({"status": "ok"}))


async def readyz(request: web.Request) -> web.Response:
    """``GET /readyz``: the database answers ``SELECT 1`` in time (503 otherwise)."""
    timeout = request.app[SETTINGS].ready_timeout_seconds
    try:
        async with asyncio.timeout(timeout):
            await request.app[BRIDGE].run(ping_primary)
    except TimeoutError:
        raise database_too_slow(timeout) from None
    return uncached(dumps({"status": "ready"}))


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text exposition of this process."""
    body = generate_latest(request.app[METRICS].registry)
    return uncached(body, content_type=CONTENT_TYPE_LATEST)
