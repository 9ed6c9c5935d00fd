"""LISTEN for catalogue changes on a connection of its own, and apply them.

Each API worker holds one psycopg ``AsyncConnection`` (autocommit, so LISTEN
takes effect at once), apart from Django's pool and the ORM bridge: it waits on
the event loop, costs no thread, and is never handed to a request. It connects
to the primary, where writes, and so their NOTIFY, go: ``DATABASE_DIRECT_URL``
when set, else Django's ``default`` database. PgBouncer in transaction mode
hands each transaction to any server connection, so a LISTEN through it would
hear nothing: with ``DATABASE_URL`` on PgBouncer, ``DATABASE_DIRECT_URL`` must
name PostgreSQL itself (the local cluster, deploy/cluster.py, and compose.yml
do so).

On every (re)connect the cache is emptied and the event window forgotten,
since notifications sent meanwhile are lost; while disconnected the cache
serves nothing. Reconnection backs off from 0.1 s to 5 s. An idle connection is
checked with ``SELECT 1`` every 15 s, so a dead peer is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterator
from typing import Any

import psycopg
from aiohttp import web
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg import sql

from aioapi.changefeed import ChangeFeed
from aioapi.keys import CACHE, CHANGE_FEED, METRICS, SETTINGS
from aioapi.response_cache import CacheCollector, ResponseCache
from movies.changes import CHANNEL, Change
from mymoviedb.replication import libpq_params, parse_lsn
from mymoviedb.routers import replica_aliases

logger = logging.getLogger(__name__)

APPLICATION_NAME = "mymoviedb-aioapi-listener"
BACKOFF_FIRST_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 5.0
PING_EVERY_SECONDS = 15.0
PING_TIMEOUT_SECONDS = 5.0


def connection_params(alias: str = DEFAULT_DB_ALIAS) -> dict[str, Any]:
    """libpq parameters of Django's ``alias`` database, for a connection of our own."""
    return libpq_params(alias, APPLICATION_NAME)


def listen_params() -> dict[str, Any]:
    """Where LISTEN goes: ``DATABASE_DIRECT_URL`` (a libpq URI) or the ``default`` database."""
    if settings.DATABASE_DIRECT_URL:
        return {"conninfo": settings.DATABASE_DIRECT_URL, "application_name": APPLICATION_NAME}
    return connection_params()


class ChangeListener:
    """Keeps one LISTEN connection up and hands each change to the cache and feed."""

    def __init__(
        self,
        params: dict[str, Any],
        *,
        cache: ResponseCache | None,
        feed: ChangeFeed,
        channel: str = CHANNEL,
    ) -> None:
        self.params = params
        self.cache = cache
        # With read replicas, a miss after an invalidation must not read an older
        # replica: the cache learns the primary's position after each NOTIFY.
        self.track_position = cache is not None and bool(replica_aliases())
        self.feed = feed
        self.channel = channel
        self.connected = False
        self.connects = 0
        self.notifications = 0
        self.malformed = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start listening in the background (again: nothing happens)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="listener")

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.connected = False
        if self.cache is not None:
            self.cache.online = False

    async def _run(self) -> None:
        delay = BACKOFF_FIRST_SECONDS
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(**self.params, autocommit=True)
                async with conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self._connected()
                    delay = BACKOFF_FIRST_SECONDS
                    await self._receive(conn)
            except (psycopg.Error, OSError, TimeoutError) as error:
                logger.warning("change listener: %s; retrying in %.1f s", error, delay)
            self._lost()
            # Jitter, so that the workers do not all reconnect at the same moment.
            await asyncio.sleep(delay * random.uniform(1.0, 1.5))
            delay = min(delay * 2, BACKOFF_MAX_SECONDS)

    async def _receive(self, conn: psycopg.AsyncConnection[Any]) -> None:
        while True:
            # One at a time when the cache needs the position after each (below).
            stop_after = 1 if self.track_position else None
            async for notify in conn.notifies(timeout=PING_EVERY_SECONDS, stop_after=stop_after):
                self._apply(notify.payload)
            # psycopg keeps notifications that arrive during this query for the
            # next notifies() call.
            async with asyncio.timeout(PING_TIMEOUT_SECONDS):
                if not self.track_position:
                    await conn.execute("SELECT 1")
                    continue
                # Read after the NOTIFY arrived, so after its commit: at or past it.
                cursor = await conn.execute("SELECT pg_current_wal_lsn()::text")
                row = await cursor.fetchone()
            lsn = parse_lsn(row[0]) if row is not None else None
            if self.cache is not None and lsn is not None:
                self.cache.raise_floor(lsn)

    def _connected(self) -> None:
        self.connects += 1
        self.connected = True
        if self.cache is not None:
            self.cache.clear()
            self.cache.online = True
        if self.connects > 1:
            logger.warning("change listener: reconnected; cache and event window reset")
            self.feed.reset("the server reconnected to the database and may have missed changes")
        else:
            # Streams opened before the first LISTEN may have missed changes too.
            self.feed.reset("the server started listening for changes")

    def _lost(self) -> None:
        if self.connected:
            logger.warning("change listener: disconnected; cache off until reconnected")
        self.connected = False
        if self.cache is not None:
            self.cache.online = False

    def _apply(self, payload: str) -> None:
        self.notifications += 1
        try:
            change = Change.from_payload(payload)
        except ValueError as error:
            # Unknown payload: assume anything changed rather than serve stale data.
            self.malformed += 1
            logger.error("change listener: malformed payload %.200r: %s", payload, error)
            change = Change("all", "update")
        if self.cache is not None:
            self.cache.apply(change)
        self.feed.publish(change)


class ListenerCollector(Collector):
    """Prometheus view of the listener and the event streams."""

    def __init__(self, listener: ChangeListener) -> None:
        self.listener = listener

    def collect(self) -> Iterator[Metric]:
        listener = self.listener
        yield GaugeMetricFamily(
            "api_changes_listening", "1 while LISTEN is in effect.", value=int(listener.connected)
        )
        yield CounterMetricFamily(
            "api_changes_connects", "LISTEN connections made.", value=listener.connects
        )
        yield CounterMetricFamily(
            "api_changes_notifications", "Change notifications received.",
            value=listener.notifications,
        )  # fmt: skip
        yield CounterMetricFamily(
            "api_changes_malformed", "Notifications whose payload did not parse (each emptied "
            "the cache and told the event streams to reload).", value=listener.malformed,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "api_events_streams", "Open /api/events streams.", value=listener.feed.streams
        )


def open_change_listener(app: web.Application) -> ChangeListener | None:
    """Set up ``app``'s response cache and change feed; ``None`` on SQLite (no NOTIFY).

    Listening starts now when the cache is on, else with the first event stream.
    Call from the app's cleanup context, after the metrics exist.
    """
    if connections[DEFAULT_DB_ALIAS].vendor != "postgresql":
        return None
    settings = app[SETTINGS]
    cache = ResponseCache(settings.cache_max_bytes) if settings.cache else None
    feed = ChangeFeed(settings.events_window)
    listener = ChangeListener(listen_params(), cache=cache, feed=feed)
    feed.wake = listener.start
    app[CHANGE_FEED] = feed
    registry = app[METRICS].registry
    registry.register(ListenerCollector(listener))
    if cache is not None:
        app[CACHE] = cache
        registry.register(CacheCollector(cache))
        listener.start()
    return listener
