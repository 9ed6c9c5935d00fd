"""What a JSON write body may not say even when its fields validate.

pydantic parses a body once, into the typed model, and what it cannot see it
cannot refuse: a key given twice in one object (the last silently wins), a
number that overflows to infinity or underflows to 0.0 (``1e-400``), and
``NaN``/``Infinity`` (not JSON at all, accepted by both parsers). Write bodies
are small and rare beside reads, so :func:`check_json` parses them a second time
with the standard library's hooks, which see each object's pairs and each
number's literal; reads never pay for it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# A digit other than 0 before the exponent: the literal is not zero.
_NONZERO_MANTISSA = re.compile(r"^-?[0-9.]*[1-9]")


class _Refused:
    """A value refused where it stands in the tree, so its path can be named."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _Object(dict[str, Any]):
    """A JSON object, remembering the keys it was given more than once."""

    __slots__ = ("repeated",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.repeated: list[str] = []
        if len(self) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen and key not in self.repeated:
                    self.repeated.append(key)
                seen.add(key)


def lost_number(literal: str) -> str | None:
    """Why the decimal ``literal`` cannot be stored as the number it says, or None.

    Also the admin's rule (movies.admin.versions): a form's FloatField reads
    ``1e-400`` as 0.0 just as JSON parsers do.
    """
    value = float(literal)
    if math.isinf(value):
        return "is too large a number"
    if value == 0.0 and _NONZERO_MANTISSA.match(literal.strip()):
        return "is too small a number: it would be stored as 0"
    return None


def _float(literal: str) -> float | _Refused:
    reason = lost_number(literal)
    return float(literal) if reason is None else _Refused(reason)


def _constant(name: str) -> _Refused:
    return _Refused(f"must be a finite number, not {name}")


def check_json(raw: bytes) -> list[dict[str, str]]:
    """The errors (name, reason) of a body pydantic accepted: repeated keys, numbers
    that are not finite or lose all their value; empty when there are none."""
    try:
        tree = json.loads(
            raw,
            object_pairs_hook=_Object,
            parse_float=_float,
            parse_constant=_constant,
            parse_int=lambda _: 0,  # integers are pydantic's to check: no digit limit here
        )
    except (ValueError, RecursionError):
        return []  # what pydantic accepted and this parser cannot read: pydantic decides
    errors: list[dict[str, str]] = []
    _walk(tree, (), errors)
    return errors


def _walk(value: Any, path: tuple[str, ...], errors: list[dict[str, str]]) -> None:
    if isinstance(value, _Refused):
        errors.append({"name": ".".join(path) or "(body)", "reason": value.reason})
    elif isinstance(value, _Object):
        for key in value.repeated:
            errors.append({"name": ".".join((*path, key)), "reason": "given more than once"})
        for key, item in value.items():
            _walk(item, (*path, key), errors)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, (*path, str(index)), errors)
