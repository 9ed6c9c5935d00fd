"""Requests parsed for both servers: JSON bodies validated into movies.schemas'
models, path ids and slugs read, and every failure a problem naming what was
wrong (query strings are movies.schemas.parse_query's).
"""

from __future__ import annotations

import re
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from movies.fields import SLUG_MAX_LENGTH, SLUG_PATTERN
from movies.json_check import check_json
from movies.models import MAX_ID
from movies.problems import Problem, invalid_parameters
from movies.schemas import CANONICAL_INTEGER, field_errors

BodyModel = TypeVar("BodyModel", bound=BaseModel)


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
        errors = field_errors(error, "unknown field")
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
