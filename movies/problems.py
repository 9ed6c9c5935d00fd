"""RFC 9457 problem details: the one error shape of the API and the comparison views.

Every problem both servers answer, and the headers it carries (``Allow``,
``Retry-After``), is built here; each server only turns a :class:`Problem` into
its own response object (``aioapi.protocol.problem_response``,
``movies.views.problem_response``). This module imports no Django: aioapi's
connection protocol uses it where Django is not set up (bench's raw-pool server).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import orjson

from movies.errors import DomainError, Invalid, NotFound, VersionConflict

PROBLEM_CONTENT_TYPE = "application/problem+json"
# A down database usually takes a few seconds to come back (a restart, a failover).
DB_RETRY_AFTER_SECONDS = 5

logger = logging.getLogger(__name__)


@dataclass
class Problem(Exception):
    """An error answered as ``application/problem+json``.

    ``type`` stays ``about:blank``: the HTTP status says what kind of problem it
    is, ``title`` is the status phrase and ``detail`` says what to fix.
    """

    status: int
    detail: str
    errors: list[dict[str, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.detail)

    @property
    def title(self) -> str:
        return HTTPStatus(self.status).phrase

    def as_dict(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            payload["errors"] = self.errors
        return payload

    def body(self) -> bytes:
        return orjson.dumps(self.as_dict())


# The status of each refusal of a service: the one mapping from the domain to HTTP.
DOMAIN_STATUSES: dict[type[DomainError], int] = {
    NotFound: 404,
    VersionConflict: 412,
    Invalid: 422,
}


def problem_of(error: DomainError) -> Problem:
    """The problem answering what a service refused."""
    detail = error.detail
    if isinstance(error, VersionConflict):
        # The writer's versions came from If-Match (movies.conditional).
        detail += ": If-Match does not match its current ETag. Read it again, then retry."
    return Problem(DOMAIN_STATUSES[type(error)], detail, errors=error.errors)


def invalid_parameters(errors: list[dict[str, str]], *, location: str = "query") -> Problem:
    """400 naming every offending parameter (``errors`` holds name and reason)."""
    names = ", ".join(dict.fromkeys(error["name"] or '""' for error in errors))
    noun = "parameter" if location == "query" else "field"
    return Problem(400, f"Invalid {location} {noun}(s): {names}.", errors=errors)


def not_found(what: str) -> Problem:
    return Problem(404, f"{what} does not exist.")


def no_resource() -> Problem:
    """404 for a URL no route serves."""
    return Problem(404, "There is no resource at this URL.")


def method_not_allowed(method: str, allowed: Iterable[str]) -> Problem:
    """405 with ``Allow`` listing, sorted, the methods the URL serves."""
    problem = Problem(405, f"Method {method} is not allowed here.")
    problem.headers["Allow"] = ", ".join(sorted(allowed))
    return problem


def too_large(limit: int) -> Problem:
    """413: the request body is past ``limit`` bytes."""
    return Problem(413, f"The request body is larger than the limit of {limit} bytes.")


def internal_error() -> Problem:
    """500: the client learns only that it failed; the server logs the cause."""
    return Problem(500, "An unexpected error occurred; it has been logged.")


def retry_later(status: int, detail: str, *, seconds: int) -> Problem:
    """A problem the client may retry after ``seconds`` (a 429 or a 503)."""
    return Problem(status, detail, headers={"Retry-After": str(seconds)})


def database_unavailable(error: BaseException) -> Problem:
    """503: the database is down or its pool is exhausted (logged once, here)."""
    logger.warning("database unavailable: %s", error)
    return retry_later(
        503, "The database is unavailable; try again shortly.", seconds=DB_RETRY_AFTER_SECONDS
    )


def database_too_slow(timeout: float) -> Problem:
    """503 of the readiness probe: the database did not answer within ``timeout``."""
    return retry_later(
        503, f"The database did not answer within {timeout:g} s.", seconds=DB_RETRY_AFTER_SECONDS
    )


def server_busy(seconds: int) -> Problem:
    """503: more ORM calls are pending than the bridge accepts."""
    return retry_later(503, "The server is busy; try again shortly.", seconds=seconds)
