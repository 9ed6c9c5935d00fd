"""Opaque keyset cursors: the sort key and the (value, id) of a boundary row.

A cursor is base64url JSON, not signed: forging one only moves the reader to
another position of a list it may read anyway. Decoding checks every type and
every value against what the sort field's column can hold, so a damaged or
forged cursor is a 400, never a database error.
"""

from __future__ import annotations

import base64
import binascii
import math
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from movies.models import MAX_ID, MAX_YEAR, MIN_YEAR, Credit, Movie, Person
from movies.problems import invalid_parameters

# base64url without padding: what Cursor.encode writes. A cursor of other characters
# is refused before it is decoded (and OpenAPI documents the same pattern).
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,512}$"
_CURSOR_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")
_TITLE_MAX_LENGTH = Movie._meta.get_field("title").max_length or 300
_NAME_MAX_LENGTH = Person._meta.get_field("name").max_length or 200
_ROLES = frozenset(Credit.Role.values)


class BadValue(ValueError):
    """A cursor value its sort field's column could not hold."""


def _title(value: object) -> str:
    # PostgreSQL refuses NUL in text (an error, not a mismatch); no stored title
    # is longer than the column.
    if not isinstance(value, str) or "\x00" in value or len(value) > _TITLE_MAX_LENGTH:
        raise BadValue
    return value


def _name(value: object) -> str:
    # A person's name, checked as a title is.
    if not isinstance(value, str) or "\x00" in value or len(value) > _NAME_MAX_LENGTH:
        raise BadValue
    return value


def _year(value: object) -> int:
    if type(value) is not int or not MIN_YEAR <= value <= MAX_YEAR:
        raise BadValue
    return value


def _rating(value: object) -> float | None:
    # NULL is a rating too (unrated films); the column's check keeps the rest in 0-10.
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadValue
    rating = float(value)
    if not math.isfinite(rating) or not 0 <= rating <= 10:
        raise BadValue
    return rating


def _timestamp(value: object) -> datetime:
    # As isoformat() writes it (fromisoformat alone lets trailing junk through), aware
    # (a naive value is ambiguous), and still a datetime once in UTC (one near year 1
    # or 9999 overflows when the database adapter converts it).
    if not isinstance(value, str):
        raise BadValue
    try:
        moment = datetime.fromisoformat(value)
        if moment.utcoffset() is None or moment.isoformat() != value:
            raise BadValue
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadValue from None


def _score(value: object) -> float:
    # A relevance score (movies.search.ranked): any finite number.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadValue
    return float(value)


def _credit_key(value: object) -> list[Any]:
    # A filmography's place before the film's id: [year, title, role] of a credit.
    if not isinstance(value, list) or len(value) != 3:
        raise BadValue
    year, title, role = value
    if not isinstance(role, str) or role not in _ROLES:
        raise BadValue
    return [_year(year), _title(title), role]


def _row_id(value: object) -> int:
    if type(value) is not int or not 1 <= value <= MAX_ID:
        raise BadValue
    return value


# Sort field -> the check (and conversion) of its cursor value.
CURSOR_VALUES: dict[str, Callable[[object], Any]] = {
    "title": _title,
    "year": _year,
    "rating": _rating,
    "updated_at": _timestamp,
    "created_at": _timestamp,
    "id": _row_id,
    # The people list's one order (by name, then id).
    "name": _name,
    # A person's filmography (newest first, then title, film and role).
    "filmography": _credit_key,
    "relevance": _score,
}


@dataclass(frozen=True)
class Cursor:
    sort: str  # e.g. "-year"; "name" for people, "filmography" for a person's credits
    value: Any  # the boundary row's sort field value
    id: int  # the boundary row's id
    backwards: bool  # True: the page before the boundary row

    def encode(self) -> str:
        value = self.value.isoformat() if isinstance(self.value, datetime) else self.value
        raw = orjson.dumps({"s": self.sort, "v": value, "i": self.id, "b": self.backwards})
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(token: str, sort: str) -> Cursor:
    """Decode ``token`` for a list sorted by ``sort`` or raise a 400 problem."""
    if not token or len(token) > 512 or not _CURSOR_ALPHABET.issuperset(token):
        raise _bad("is not a valid cursor")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise _bad("is not a valid cursor") from None
    if not isinstance(data, dict) or set(data) != {"s", "v", "i", "b"}:
        raise _bad("is not a valid cursor")
    if data["s"] != sort:
        raise _bad("was made for another sort order; drop it or keep the sort parameter")
    try:
        value = CURSOR_VALUES[sort.lstrip("-")](data["v"])
        row_id = _row_id(data["i"])
    except BadValue:
        raise _bad("is not a valid cursor") from None
    if not isinstance(data["b"], bool):
        raise _bad("is not a valid cursor")
    return Cursor(sort=sort, value=value, id=row_id, backwards=data["b"])


def _bad(reason: str) -> Exception:
    return invalid_parameters([{"name": "cursor", "reason": reason}])
