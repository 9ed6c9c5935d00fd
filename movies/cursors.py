"""Opaque keyset cursors: the sort key and the (value, id) of a boundary row.

A cursor is base64url JSON, not signed: forging one only moves the reader to
another position of a list it may read anyway. Decoding checks every type, so a
damaged cursor is a 400, never a database error.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from movies.models import MAX_ID
from movies.problems import invalid_parameters

# Sort field -> Python types its cursor value may have (None: the field is nullable).
CURSOR_VALUE_TYPES: dict[str, tuple[type, ...]] = {
    "title": (str,),
    "year": (int,),
    "rating": (float, int, type(None)),
    "updated_at": (str,),
    "created_at": (str,),
    "id": (int,),
}
DATETIME_FIELDS = frozenset({"updated_at", "created_at"})


@dataclass(frozen=True)
class Cursor:
    sort: str  # e.g. "-year"
    value: Any  # the boundary row's sort field value
    id: int  # the boundary row's id
    backwards: bool  # True: the page before the boundary row

    def encode(self) -> str:
        value = self.value.isoformat() if isinstance(self.value, datetime) else self.value
        raw = orjson.dumps({"s": self.sort, "v": value, "i": self.id, "b": self.backwards})
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(token: str, sort: str) -> Cursor:
    """Decode ``token`` for a list sorted by ``sort`` or raise a 400 problem."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise _bad("is not a valid cursor") from None
    if not isinstance(data, dict) or set(data) != {"s", "v", "i", "b"}:
        raise _bad("is not a valid cursor")
    if data["s"] != sort:
        raise _bad("was made for another sort order; drop it or keep the sort parameter")
    field = sort.lstrip("-")
    value, row_id, backwards = data["v"], data["i"], data["b"]
    valid = (
        isinstance(value, CURSOR_VALUE_TYPES[field])
        and not isinstance(value, bool)
        and type(row_id) is int
        and 1 <= row_id <= MAX_ID
        and isinstance(backwards, bool)
    )
    if not valid:
        raise _bad("is not a valid cursor")
    if field in DATETIME_FIELDS:
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise _bad("is not a valid cursor") from None
    return Cursor(sort=sort, value=value, id=row_id, backwards=backwards)


def _bad(reason: str) -> Exception:
    return invalid_parameters([{"name": "cursor", "reason": reason}])
