"""The value types request fields are built from: free text by its rules, slugs,
whole numbers as query strings spell them, years, ids and minutes.

Each type carries both its check (with a readable reason) and the pattern or
bounds the OpenAPI document shows, so the two cannot disagree.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from movies.models import MAX_ID, MAX_YEAR, MIN_YEAR


def _printable(value: str) -> str:
    # NUL and other control characters are rejected here, not by the database
    # (PostgreSQL refuses NUL in text with an error that would become a 500).
    if any(ord(char) < 0x20 and char not in "\t\n\r" for char in value):
        raise ValueError("must not contain control characters")
    if "\ufffd" in value:
        raise ValueError("must be valid UTF-8")
    return value


# The same rule as a pattern, for the OpenAPI document only: _printable gives the
# readable error message.
PRINTABLE_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\ufffd]*$"
Text = Annotated[
    str, AfterValidator(_printable), Field(json_schema_extra={"pattern": PRINTABLE_PATTERN})
]
SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
Slug = Annotated[str, Field(pattern=SLUG_PATTERN, max_length=64)]

# Characters no free text written through the API may hold: controls, the
# invisible ones (zero-width space, word joiner, byte-order mark),
# bidi overrides and isolates (they reorder what the text around them shows),
# U+FFFD (what a bad UTF-8 byte decoded to) and Unicode's non-characters. The
# zero-width non-joiner and joiner (U+200C, U+200D) stay: Persian and Indic
# spelling and emoji sequences need them.
_INVISIBLE = [
    (0x7F, 0x9F), (0x200B, 0x200B), (0x202A, 0x202E), (0x2060, 0x2060),
    (0x2066, 0x2069), (0xFDD0, 0xFDEF), (0xFEFF, 0xFEFF), (0xFFFD, 0xFFFF),
    *((plane + 0xFFFE, plane + 0xFFFF) for plane in range(0x10000, 0x110000, 0x10000)),
]  # fmt: skip
_LINE_CONTROLS = [(0x00, 0x1F)]  # a one-line field: no tab or line break either
_PROSE_CONTROLS = [(0x00, 0x08), (0x0B, 0x0C), (0x0E, 0x1F)]  # tab, LF and CR allowed


def _char_class(ranges: tuple[tuple[int, int], ...]) -> str:
    # BMP characters as \uXXXX escapes (the same in Python and ECMA-262 patterns);
    # astral ones literally, which both read as one code point.
    def char(code: int) -> str:
        return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)

    return "".join(
        char(low) if low == high else f"{char(low)}-{char(high)}" for low, high in ranges
    )


@dataclass(frozen=True)
class _TextRule:
    """Free text refusing ``refused`` characters; one-line text may not be blank.

    One home for each rule: the pattern OpenAPI documents is the one applied here
    (Schemathesis tests both ways); ``check`` adds a readable reason.
    """

    refused: tuple[tuple[int, int], ...]
    one_line: bool

    @property
    def pattern(self) -> str:
        # "" stays allowed where the field allows it (min_length says where not).
        blank = "(?!\\s+$)" if self.one_line else ""
        return f"^{blank}[^{_char_class(self.refused)}]*$"

    @functools.cached_property
    def forbidden(self) -> re.Pattern[str]:
        return re.compile(f"[{_char_class(self.refused)}]")

    def check(self, value: str) -> str:
        found = self.forbidden.search(value)
        if found is not None:
            raise ValueError(
                f"must not contain U+{ord(found.group()):04X} (control characters, invisible "
                "characters, bidi overrides and non-characters are refused)"
            )
        if self.one_line and value and not value.strip():
            raise ValueError("must not be only whitespace")
        return value


_LINE = _TextRule((*_LINE_CONTROLS, *_INVISIBLE), one_line=True)
_PROSE = _TextRule((*_PROSE_CONTROLS, *_INVISIBLE), one_line=False)
# A name on one line (a title, a character): no tab or line break, not blank.
Line = Annotated[
    str, AfterValidator(_LINE.check), Field(json_schema_extra={"pattern": _LINE.pattern})
]
# Prose (a synopsis): line breaks and tabs allowed.
Prose = Annotated[
    str, AfterValidator(_PROSE.check), Field(json_schema_extra={"pattern": _PROSE.pattern})
]

CANONICAL_INTEGER = re.compile(r"0|[1-9][0-9]*")


def _whole_number(value: object) -> object:
    # Query strings and paths spell an integer one way only: plain digits, no sign,
    # underscore, space, decimal point or leading zero ("1_0", " 1", "1.0" and "010"
    # would all be 10 to a lenient parser, and name one cache entry four ways).
    # A JSON body's integers are integer literals: pydantic's strict mode refuses
    # 2000.0, 2e3 and "2000" alike (movies.parsing.parse_body).
    if isinstance(value, str) and not CANONICAL_INTEGER.fullmatch(value):
        raise ValueError("must be a whole number in plain digits (like 10)")
    return value


Integer = Annotated[int, BeforeValidator(_whole_number)]
Year = Annotated[int, Field(ge=MIN_YEAR, le=MAX_YEAR), BeforeValidator(_whole_number)]
Id = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_whole_number)]
Minutes = Annotated[int, Field(ge=1, le=1000), BeforeValidator(_whole_number)]
