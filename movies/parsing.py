"""Requests parsed for both servers: query strings and JSON bodies validated into
movies.schemas' models, path ids read, and every failure a problem naming what
was wrong.

Query strings are parsed from (name, value) pairs, so aiohttp's MultiDict and
Django's QueryDict give the same result and the same errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from movies.fields import CANONICAL_INTEGER, SLUG_MAX_LENGTH, SLUG_PATTERN
from movies.json_check import check_json
from movies.models import MAX_ID
from movies.problems import Problem, invalid_parameters
from movies.schemas import ParameterConflict, QueryParameters

QueryModel = TypeVar("QueryModel", bound=QueryParameters)
BodyModel = TypeVar("BodyModel", bound=BaseModel)


def _field_errors(error: ValidationError, unknown: str) -> list[dict[str, str]]:
    details = error.errors(include_url=False, include_input=False)
    return [entry for detail in details for entry in _describe(detail, unknown)]


def _describe(detail: ErrorDetails, unknown: str) -> list[dict[str, str]]:
    """The error entries of one failure: one per parameter or field it is about."""
    reason = detail["msg"].removeprefix("Value error, ")
    conflict = detail.get("ctx", {}).get("error")
    if isinstance(conflict, ParameterConflict):
        return [{"name": name, "reason": reason} for name in conflict.names]
    # Only a body's own rules fail at the root: a query's names its parameters.
    name = ".".join(str(part) for part in detail["loc"]) if detail["loc"] else "(body)"
    if detail["type"] == "extra_forbidden":
        return [{"name": name, "reason": unknown}]
    return [{"name": name, "reason": reason}]


def parse_query(model: type[QueryModel], items: Iterable[tuple[str, str]]) -> QueryModel:
    """Validate query-string pairs into ``model``; a problem names each bad parameter."""
    values: dict[str, str] = {}
    refused: list[dict[str, str]] = []
    for name, value in items:
        if not name:  # "?=x", "?&=": named as given, an empty name
            refused.append({"name": "", "reason": "a parameter must have a name"})
        elif name in values:
            refused.append({"name": name, "reason": "given more than once"})
        values[name] = value
    if refused:
        raise invalid_parameters(refused)
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise invalid_parameters(_field_errors(error, "unknown parameter")) from None


def parse_body(model: type[BodyModel], raw: bytes) -> BodyModel:
    """Validate a JSON request body; malformed JSON and bad fields are 400s.

    Strict: a JSON integer field takes only an integer literal (``2000``, not
    ``2000.0``, ``2e3`` or ``"2000"``). What the model cannot see (a key given
    twice, a number that is not finite or underflows to 0) is :func:`check_json`'s.
    """
    try:
        body = model.model_validate_json(raw, strict=True)
    except ValidationError as error:
        details = error.errors(include_url=False, include_input=False)
        if any(detail["type"] == "json_invalid" for detail in details):
            raise Problem(400, "The request body is not valid JSON.") from None
        if any(detail["type"] == "model_type" and not detail["loc"] for detail in details):
            raise Problem(400, "The request body must be a JSON object.") from None
        errors = _field_errors(error, "unknown field")
        raise invalid_parameters(errors, location="body") from None
    if errors := check_json(raw):
        raise invalid_parameters(errors, location="body")
    return body


# A path id or an event id as this API writes them: a positive integer, plain digits.
EVENT_ID_PATTERN = "^[1-9][0-9]{0,18}$"


def parse_id(raw: str) -> int | None:
    """A path id: a positive 64-bit integer in plain digits, else ``None`` (a 404).

    One spelling per id: "036249" or "+1" names no resource, as "abc" does not.
    """
    if not CANONICAL_INTEGER.fullmatch(raw) or len(raw) > 19:
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_ID else None


def parse_slug(raw: str) -> str | None:
    """A path slug (``science-fiction``), else ``None`` (a 404): no slug is spelled
    otherwise, so no query is needed to know it names nothing."""
    if len(raw) > SLUG_MAX_LENGTH or not re.fullmatch(SLUG_PATTERN, raw):
        return None
    return raw
