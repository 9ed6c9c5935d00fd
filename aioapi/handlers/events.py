"""``GET /api/events``: committed catalogue changes as server-sent events.

Each event is ``id: N``, ``event: change`` (or ``reload``: refetch everything)
and ``data:`` a JSON object with ``id``, ``kind``, ``op``, ``movies``,
``people`` and ``genres``. A client that reconnects with ``Last-Event-ID``
first gets the events it missed, if they are still in the window
(aioapi.changefeed). A comment line every ``events_heartbeat_seconds`` keeps
idle streams alive through proxies. PostgreSQL only: SQLite has no NOTIFY.
"""

from __future__ import annotations

import asyncio

from aiohttp import hdrs, web

from aioapi.changefeed import END
from aioapi.db import ping_primary
from aioapi.keys import BRIDGE, CHANGE_FEED, SETTINGS
from movies.conditional import NO_STORE
from movies.headers import SECURITY_HEADERS
from movies.parsing import parse_id
from movies.problems import Problem
from movies.schemas import NoQuery, parse_query

CONTENT_TYPE = "text/event-stream"
HEARTBEAT = b": heartbeat\n\n"
# How long a client waits before reconnecting after the stream ends.
RETRY = b"retry: 2000\n\n"


async def stream_events(request: web.Request) -> web.StreamResponse:
    """``GET /api/events``: a stream of change events, resumable with Last-Event-ID."""
    parse_query(NoQuery, request.query.items())  # takes none: any given is a 400
    feed = request.app.get(CHANGE_FEED)
    if feed is None:
        raise Problem(
            503, "Change events need PostgreSQL (LISTEN/NOTIFY); this API runs on SQLite."
        )
    last_id = _last_event_id(request)
    heartbeat = request.app[SETTINGS].events_heartbeat_seconds
    queue = feed.subscribe(last_id)
    response = web.StreamResponse(
        headers={
            **SECURITY_HEADERS,
            hdrs.CONTENT_TYPE: CONTENT_TYPE,
            hdrs.CACHE_CONTROL: NO_STORE,
            # nginx would otherwise buffer the stream.
            "X-Accel-Buffering": "no",
        }
    )
    try:
        # A stream says nothing while the database is down: say so with a 503
        # instead (at once while the bridge's breaker is open, else after one
        # SELECT 1). Subscribed first, so no event committed meanwhile is missed.
        await request.app[BRIDGE].run(ping_primary)
        await response.prepare(request)
        await response.write(RETRY)
        while True:
            try:
                async with asyncio.timeout(heartbeat):
                    frame = await queue.get()
            except TimeoutError:
                frame = HEARTBEAT
            if frame == END:
                break
            await response.write(frame)
    except ConnectionResetError:
        pass  # the client went away
    finally:
        feed.unsubscribe(queue)
    return response


async def close_streams(app: web.Application) -> None:
    """``on_shutdown``: end every open stream, so graceful shutdown does not wait
    ``API_SHUTDOWN_TIMEOUT_SECONDS`` for them."""
    feed = app.get(CHANGE_FEED)
    if feed is not None:
        feed.close()


def _last_event_id(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID", "").strip()
    if not raw:
        return None
    event_id = parse_id(raw)
    if event_id is None:
        raise Problem(400, "Last-Event-ID must be the id of an event this API sent.")
    return event_id
