"""Settings of the API process, read from the environment in one place.

Django's own settings (database, ``API_CACHE_CONTROL``) stay in
``mymoviedb.settings``; these are the knobs of the aiohttp process around it.
A malformed value stops start-up with a message naming the variable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeVar, cast

import environ
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from aioapi.protocol import DEFAULT_HEADER_TIMEOUT_SECONDS

AccessLogFormat = Literal["off", "text", "json"]
ACCESS_LOG_FORMATS: tuple[AccessLogFormat, ...] = ("off", "text", "json")
MIB = 1024 * 1024
T = TypeVar("T")


@dataclass(frozen=True)
class ApiSettings:
    """Everything the app factory needs to know; defaults suit development."""

    # Measured, not matched to Django: see "Thread and connection policy" in aioapi/db.py.
    db_threads: int = 8
    db_max_pending: int = 2048
    max_body_bytes: int = MIB
    cors_origins: tuple[str, ...] = ()
    access_log: AccessLogFormat = "text"
    auth_failures_per_minute: int = 10
    # Behind a proxy every client has the proxy's address: only then trust the
    # last X-Forwarded-For hop (the one the proxy appended) for rate limiting.
    trust_forwarded_for: bool = False
    shutdown_timeout_seconds: float = 30.0
    # From a request's first byte to the end of its headers (aioapi/protocol.py); an
    # idle keep-alive connection waits for that first byte as long as before.
    header_timeout_seconds: float = DEFAULT_HEADER_TIMEOUT_SECONDS
    ready_timeout_seconds: float = 2.0
    # An overloaded bridge clears in well under a second; a down database takes longer
    # (movies.problems.DB_RETRY_AFTER_SECONDS).
    overload_retry_after_seconds: int = 1
    cache_control: str = "public, max-age=0, must-revalidate"
    # The response cache of each worker (aioapi/cache.py). from_env turns it on by
    # default on PostgreSQL, whose NOTIFY keeps it fresh; it never runs on SQLite.
    cache: bool = False
    cache_max_bytes: int = 64 * MIB
    # GET /api/events: a comment this often keeps idle streams open through proxies,
    # and this many recent events per worker can be resumed with Last-Event-ID.
    events_heartbeat_seconds: float = 15.0
    events_window: int = 1000
    # Exports running at once in this process (movies/export_slots.py); each holds
    # one bridge thread and one pooled connection for seconds to minutes. None: a
    # quarter of the threads, at least 1 (export_limit), so three quarters are always
    # left to the rest of the API whatever the downloads do.
    export_max_concurrent: int | None = None
    # An export whose client takes no byte for this long is ended (aioapi.streaming).
    export_write_timeout_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.db_threads < 1 or self.db_max_pending < self.db_threads:
            raise ImproperlyConfigured(
                "API_DB_THREADS must be >= 1 and API_DB_MAX_PENDING >= API_DB_THREADS."
            )
        if self.max_body_bytes < 1 or self.auth_failures_per_minute < 1:
            raise ImproperlyConfigured(
                "API_MAX_BODY_BYTES and API_AUTH_FAILURES_PER_MINUTE must be positive."
            )
        if self.export_max_concurrent is not None and not (
            1 <= self.export_max_concurrent <= self.db_threads
        ):
            # More than the threads would only queue exports inside the bridge.
            raise ImproperlyConfigured(
                "API_EXPORT_MAX_CONCURRENT must be between 1 and API_DB_THREADS."
            )
        if not self.header_timeout_seconds > 0:
            raise ImproperlyConfigured("API_HEADER_TIMEOUT_SECONDS must be positive.")
        if self.export_write_timeout_seconds <= 0:
            raise ImproperlyConfigured("API_EXPORT_WRITE_TIMEOUT_SECONDS must be positive.")
        if self.cache_max_bytes < 1:
            raise ImproperlyConfigured("API_CACHE_MAX_BYTES must be positive.")
        if self.access_log not in ACCESS_LOG_FORMATS:
            raise ImproperlyConfigured(
                f"API_ACCESS_LOG must be one of {', '.join(ACCESS_LOG_FORMATS)}, "
                f"not {self.access_log!r}."
            )

    @property
    def export_limit(self) -> int:
        """Exports allowed at once: ``export_max_concurrent`` or a quarter of the threads."""
        if self.export_max_concurrent is not None:
            return self.export_max_concurrent
        return max(1, self.db_threads // 4)

    @classmethod
    def from_env(cls) -> ApiSettings:
        """Read ``API_*`` variables; call after ``django.setup()``."""
        d = cls()
        return cls(
            db_threads=_read("API_DB_THREADS", int, d.db_threads),
            db_max_pending=_read("API_DB_MAX_PENDING", int, d.db_max_pending),
            max_body_bytes=_read("API_MAX_BODY_BYTES", int, d.max_body_bytes),
            cors_origins=tuple(_read("API_CORS_ORIGINS", list, [])),
            access_log=cast(AccessLogFormat, _read("API_ACCESS_LOG", str, d.access_log)),
            auth_failures_per_minute=_read(
                "API_AUTH_FAILURES_PER_MINUTE", int, d.auth_failures_per_minute
            ),
            trust_forwarded_for=_read("API_TRUST_X_FORWARDED_FOR", bool, d.trust_forwarded_for),
            shutdown_timeout_seconds=_read(
                "API_SHUTDOWN_TIMEOUT_SECONDS", float, d.shutdown_timeout_seconds
            ),
            header_timeout_seconds=_read(
                "API_HEADER_TIMEOUT_SECONDS", float, d.header_timeout_seconds
            ),
            ready_timeout_seconds=_read(
                "API_READY_TIMEOUT_SECONDS", float, d.ready_timeout_seconds
            ),
            overload_retry_after_seconds=_read(
                "API_OVERLOAD_RETRY_AFTER_SECONDS", int, d.overload_retry_after_seconds
            ),
            cache_control=django_settings.API_CACHE_CONTROL,
            cache=_cache_switch(),
            cache_max_bytes=_read("API_CACHE_MAX_BYTES", int, d.cache_max_bytes),
            export_max_concurrent=_read("API_EXPORT_MAX_CONCURRENT", int, None),
            export_write_timeout_seconds=_read(
                "API_EXPORT_WRITE_TIMEOUT_SECONDS", float, d.export_write_timeout_seconds
            ),
        )


def _cache_switch() -> bool:
    # Without NOTIFY nothing would tell a worker that the admin changed a film.
    postgresql = connection.vendor == "postgresql"
    cache = _read("API_CACHE", bool, postgresql)
    if cache and not postgresql:
        raise ImproperlyConfigured(
            "API_CACHE=1 needs PostgreSQL (LISTEN/NOTIFY keeps the cache fresh); "
            "on SQLite leave it unset or set API_CACHE=0."
        )
    return cache


def _read(name: str, kind: type[T], default: T) -> T:
    # django-environ's own message names the bad value but not the variable.
    try:
        return cast(T, environ.Env().get_value(name, cast=kind, default=default))
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} is not a valid {kind.__name__}: {error}") from None
