"""Settings of the API process, read from the environment in one place.

Each field is a variable ``API_<FIELD>`` (:meth:`ApiSettings.variable` names it),
typed, with the default used when it is unset; pydantic-settings reads and
validates them. Django's own settings (database, ``API_CACHE_CONTROL``) stay in
``mymoviedb.settings``. A malformed value stops start-up with a message naming
the variable. ``.env.example`` shows these defaults; tests/test_aioapi_settings.py
checks that it does.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal, Self

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from pydantic import (
    IPvAnyNetwork,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from aioapi.protocol import DEFAULT_BODY_TIMEOUT_SECONDS, DEFAULT_HEADER_TIMEOUT_SECONDS

AccessLogFormat = Literal["off", "text", "json"]
MIB = 1024 * 1024
PREFIX = "API_"
REPLACED_VARIABLE = "API_TRUST_X_FORWARDED_FOR"


class ApiSettings(BaseSettings):
    """Everything the app factory needs to know; defaults suit development.

    ``ApiSettings(...)`` takes its values from the call alone (tests build them so);
    :meth:`from_env` reads the environment.
    """

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, frozen=True, extra="forbid", populate_by_name=True
    )

    # Measured, not matched to Django: see "Thread and connection policy" in aioapi/db.py.
    db_threads: PositiveInt = 8
    db_max_pending: PositiveInt = 2048
    max_body_bytes: PositiveInt = MIB
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    access_log: AccessLogFormat = "text"
    auth_failures_per_minute: PositiveInt = 10
    # The proxies (addresses or networks, comma-separated) whose X-Forwarded-For is
    # believed, for rate limiting and the access log (aioapi/forwarded.py). None by
    # default: every client is its peer.
    trusted_proxies: Annotated[tuple[IPvAnyNetwork, ...], NoDecode] = ()
    shutdown_timeout_seconds: PositiveFloat = 30.0
    # From a request's first byte to the end of its headers (aioapi/protocol.py); an
    # idle keep-alive connection waits for that first byte as long as before.
    header_timeout_seconds: PositiveFloat = DEFAULT_HEADER_TIMEOUT_SECONDS
    # From the end of a request's head to the last byte of its body: past it the
    # request is answered 408 and its connection closed (aioapi/protocol.py).
    body_timeout_seconds: PositiveFloat = DEFAULT_BODY_TIMEOUT_SECONDS
    ready_timeout_seconds: PositiveFloat = 2.0
    # An overloaded bridge clears in well under a second; a down database takes longer
    # (movies.problems.DB_RETRY_AFTER_SECONDS).
    overload_retry_after_seconds: NonNegativeInt = 1
    # Django's API_CACHE_CONTROL (the comparison views send it too): from_env copies it.
    cache_control: str = "public, max-age=0, must-revalidate"
    # The response cache of each worker (aioapi/response_cache.py). from_env turns it on by
    # default on PostgreSQL, whose NOTIFY keeps it fresh; it never runs on SQLite.
    cache: bool = False
    cache_max_bytes: PositiveInt = 64 * MIB
    # GET /api/events: a comment this often keeps idle streams open through proxies,
    # and this many recent events per worker can be resumed with Last-Event-ID.
    events_heartbeat_seconds: PositiveFloat = 15.0
    events_window: PositiveInt = 1000
    # Exports running at once in this process (movies/export_slots.py); each holds
    # one bridge thread and one pooled connection for seconds to minutes. None: a
    # quarter of the threads, at least 1 (export_limit), so three quarters are always
    # left to the rest of the API whatever the downloads do.
    export_max_concurrent: PositiveInt | None = None
    # An export whose client takes no byte for this long is ended (aioapi.streaming).
    export_write_timeout_seconds: PositiveFloat = 30.0

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(origin.strip() for origin in value.split(",") if origin.strip())
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.db_max_pending < self.db_threads:
            raise ValueError("API_DB_MAX_PENDING must be >= API_DB_THREADS")
        if self.export_max_concurrent is not None and self.export_max_concurrent > self.db_threads:
            # More than the threads would only queue exports inside the bridge.
            raise ValueError("API_EXPORT_MAX_CONCURRENT must be between 1 and API_DB_THREADS")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)  # the environment only through from_env

    @property
    def export_limit(self) -> int:
        """Exports allowed at once: ``export_max_concurrent`` or a quarter of the threads."""
        if self.export_max_concurrent is not None:
            return self.export_max_concurrent
        return max(1, self.db_threads // 4)

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable of ``field``."""
        alias = cls.model_fields[field].validation_alias
        return alias if isinstance(alias, str) else f"{PREFIX}{field.upper()}"

    @classmethod
    def from_env(cls) -> ApiSettings:
        """Read ``API_*`` variables; call after ``django.setup()``."""
        if REPLACED_VARIABLE in os.environ:
            # Ignored silently, every client behind the proxy would share one address.
            raise ImproperlyConfigured(
                f"{REPLACED_VARIABLE} is replaced by API_TRUSTED_PROXIES: the addresses or "
                "networks of the proxies whose X-Forwarded-For is believed (0.0.0.0/0,::/0 "
                "where nothing but the proxy can reach the API)."
            )
        values = EnvSettingsSource(cls)()
        values["cache_control"] = django_settings.API_CACHE_CONTROL
        # Without NOTIFY nothing would tell a worker that the admin changed a film.
        postgresql = connection.vendor == "postgresql"
        try:
            settings = cls(**{"cache": postgresql, **values})
        except ValidationError as error:
            raise ImproperlyConfigured(_readable(cls, error)) from None
        if settings.cache and not postgresql:
            raise ImproperlyConfigured(
                "API_CACHE=1 needs PostgreSQL (LISTEN/NOTIFY keeps the cache fresh); "
                "on SQLite leave it unset or set API_CACHE=0."
            )
        return settings


def _readable(settings: type[ApiSettings], error: ValidationError) -> str:
    """One line per bad variable: its name, the value given and what is wrong."""
    lines = []
    for problem in error.errors(include_url=False):
        message = problem["msg"].removeprefix("Value error, ")
        location = problem["loc"]
        if location:  # a field's name, or the variable itself where it is an alias
            field = str(location[0])
            name = settings.variable(field) if field in settings.model_fields else field
            message = f"{name}={problem['input']!r}: {message}"
        lines.append(message)
    return "Invalid API settings: " + "; ".join(lines) + "."
