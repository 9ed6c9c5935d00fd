"""Path values, read for both servers: an id or a slug in plain form, else nothing
of that name exists (a 404; query strings are movies.schemas', bodies
movies.bodies').
"""

from __future__ import annotations

import re

from movies.fields import SLUG_MAX_LENGTH, SLUG_PATTERN
from movies.models import MAX_ID
from movies.schemas import CANONICAL_INTEGER

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
