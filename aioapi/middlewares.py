"""The API's two middlewares: one turns every error into a problem, one counts.

``problem_middleware`` turns whatever a handler raises (a :class:`Problem`, a
service's refusal through :func:`movies.problems.problem_of`, aiohttp's HTTP
errors, a database outage) into a response. Errors outside a handler are
answered where they happen, in the same RFC 9457 shape: a request that never
reached the app (malformed, or too slow to arrive) by aioapi.protocol, and a
stream that fails after its first bytes by ending it (aioapi.streaming).
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler
from django.db import InterfaceError, OperationalError

from aioapi.db import BridgeOverloaded
from aioapi.keys import METRICS, SETTINGS
from aioapi.protocol import problem_response
from aioapi.responses import CLIENT_CLOSED
from movies.errors import DomainError
from movies.problems import (
    Problem,
    database_unavailable,
    internal_error,
    method_not_allowed,
    no_resource,
    problem_of,
    server_busy,
    too_large,
)

logger = logging.getLogger(__name__)

UNMATCHED_ROUTE = "unmatched"
# Any token is a valid HTTP method: label the rest "other" to bound the series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every error as ``application/problem+json``; never leak a traceback."""
    try:
        return await handler(request)
    except Problem as problem:
        return problem_response(problem)
    except DomainError as refused:
        return problem_response(problem_of(refused))
    except web.HTTPException as error:
        if error.status < 400:
            raise  # 304 and redirects are answers, not errors
        return problem_response(_from_http_exception(request, error))
    except BridgeOverloaded:
        return problem_response(server_busy(request.app[SETTINGS].overload_retry_after_seconds))
    except (OperationalError, InterfaceError) as error:
        return problem_response(database_unavailable(error))
    except Exception as error:
        if isinstance(error, ConnectionError) and request.transport is None:
            # The client went away (mid-body, say): no error of ours, nothing to answer.
            # The status is never sent; metrics and the access log count it as nginx does.
            logger.debug("Client closed the connection: %s %s", request.method, request.path)
            return web.Response(status=CLIENT_CLOSED)
        # Logged with its traceback here; the client learns only that it failed.
        logger.exception("Unhandled error answering %s %s", request.method, request.path)
        return problem_response(internal_error())


def _from_http_exception(request: web.Request, error: web.HTTPException) -> Problem:
    if isinstance(error, web.HTTPNotFound):
        return no_resource()
    if isinstance(error, web.HTTPMethodNotAllowed):
        return method_not_allowed(request.method, error.allowed_methods)
    if isinstance(error, web.HTTPRequestEntityTooLarge):
        return too_large(request.app[SETTINGS].max_body_bytes)
    return Problem(error.status, error.text or error.reason)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request by method, route template and final status."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    except asyncio.CancelledError:
        status = CLIENT_CLOSED
        raise
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else UNMATCHED_ROUTE
        method = request.method if request.method in KNOWN_METHODS else "other"
        labels = (method, route, str(status))
        metrics = request.app[METRICS]
        metrics.requests.labels(*labels).inc()
        metrics.latency.labels(*labels).observe(time.perf_counter() - started)
