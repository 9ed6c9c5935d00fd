"""RFC 9457 problem details: the one error shape of the API and the comparison views."""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import orjson

PROBLEM_CONTENT_TYPE = "application/problem+json"


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


def invalid_parameters(errors: list[dict[str, str]], *, location: str = "query") -> Problem:
    """400 naming every offending parameter (``errors`` holds name and reason)."""
    names = ", ".join(dict.fromkeys(error["name"] for error in errors))
    noun = "parameter" if location == "query" else "field"
    return Problem(400, f"Invalid {location} {noun}(s): {names}.", errors=errors)


def not_found(what: str) -> Problem:
    return Problem(404, f"{what} does not exist.")
