"""The rule for free text the catalogue stores: what no title, name, character or
synopsis may hold, and what counts as showing nothing at all.

One home for the rule, without Django or pydantic: the API's field types
(movies.fields), the models' validators that the admin runs (movies.validators)
and the importer (movies.importing.records) all apply :data:`LINE` or
:data:`PROSE`. The characters are chosen by Unicode category (``unicodedata``,
Python's Unicode version), not listed one by one:

* Cc, controls (tab, LF and CR stay in prose);
* Cf, format characters: invisible, or reordering the text around them (the
  zero-width space, the soft hyphen, bidi overrides and isolates, the byte-order
  mark, the tag characters of U+E0000...). Kept: the zero-width non-joiner and
  joiner (Persian and Indic spelling, emoji sequences need them) and the
  left-to-right, right-to-left and Arabic letter marks (they steer mixed-direction
  text without moving it);
* Zl and Zp, the line and paragraph separators (a line break JSON and JavaScript
  disagree on);
* Co, private use (a glyph only some font has);
* U+FFFD (what a bad UTF-8 byte became) and the non-characters.

Surrogates (Cs) cannot arrive (UTF-8 and the JSON parsers refuse them) and are
left out of the pattern, which ECMA-262 and Rust engines could not compile with
them. Unassigned code points (Cn) stay allowed: the clients' Unicode is often newer than
Python's, and a newly encoded emoji must not be refused for it.

Non-empty text must show something: text made only of whitespace, the kept marks,
variation selectors and the letters that draw as blanks (Hangul fillers, the
braille blank, Khmer's invisible vowels) is refused.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from dataclasses import dataclass

Ranges = tuple[tuple[int, int], ...]

_KEPT_FORMAT = frozenset({0x200C, 0x200D, 0x200E, 0x200F, 0x061C})
# Letters and symbols that draw nothing: made only of them (and spaces), text is blank.
_BLANK_LOOKING = frozenset({
    0x115F, 0x1160, 0x3164, 0xFFA0,  # Hangul choseong, jungseong, compatibility, halfwidth fillers
    0x2800,  # braille pattern blank
    0x17B4, 0x17B5,  # Khmer inherent vowels
    0x034F,  # combining grapheme joiner
    *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0),  # variation selectors
    *range(0x180B, 0x1810),  # Mongolian variation selectors and vowel separator
})  # fmt: skip
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
# Format characters and separators live in planes 0, 1 and 14 (Unicode 15.1); Co is
# a fixed set of ranges by Unicode's stability policy, so the scan stays ~15 ms.
_SCANNED = itertools.chain(range(0x20000), range(0xE0000, 0xE1000))
_FIXED: Ranges = (
    (0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD),  # Co
    (0xFDD0, 0xFDEF), (0xFFFD, 0xFFFF),  # non-characters, U+FFFD
    *((plane + 0xFFFE, plane + 0xFFFF) for plane in range(0, 0x110000, 0x10000)),
)  # fmt: skip


def _ranges(codes: list[int]) -> Ranges:
    merged: list[tuple[int, int]] = []
    for code in sorted(set(codes)):
        if merged and merged[-1][1] == code - 1:
            merged[-1] = (merged[-1][0], code)
        else:
            merged.append((code, code))
    return tuple(merged)


def _expand(ranges: Ranges) -> list[int]:
    return [code for low, high in ranges for code in range(low, high + 1)]


_CATEGORISED = [
    code
    for code in _SCANNED
    if unicodedata.category(chr(code)) in _REFUSED_CATEGORIES and code not in _KEPT_FORMAT
]
_TAB_LF_CR = (0x09, 0x0A, 0x0D)
_PROSE_REFUSED = _ranges(
    [code for code in _CATEGORISED if code not in _TAB_LF_CR] + _expand(_FIXED)
)
_LINE_REFUSED = _ranges(_CATEGORISED + _expand(_FIXED))
_BLANK = _ranges(
    [code for code in range(0x3001) if chr(code).isspace()] + [*_KEPT_FORMAT, *_BLANK_LOOKING]
)
_FORMAT = _ranges([code for code in _CATEGORISED if unicodedata.category(chr(code)) == "Cf"])


def _char_class(ranges: Ranges) -> str:
    # BMP characters as \uXXXX escapes (the same in Python and ECMA-262 patterns);
    # astral ones literally, which both read as one code point.
    def char(code: int) -> str:
        return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)

    return "".join(
        char(low) if low == high else f"{char(low)}-{char(high)}" for low, high in ranges
    )


@dataclass(frozen=True)
class TextRule:
    """Free text refusing ``refused`` characters, and non-empty text showing nothing.

    :attr:`pattern` is the rule as one regular expression (what OpenAPI documents;
    Schemathesis tests both ways); :meth:`check` applies it with a readable reason.
    """

    refused: Ranges

    @property
    def pattern(self) -> str:
        # "" stays allowed where the field allows it (min_length says where not).
        return f"^(?![{_char_class(_BLANK)}]+$)[^{_char_class(self.refused)}]*$"

    @functools.cached_property
    def _forbidden(self) -> re.Pattern[str]:
        return re.compile(f"[{_char_class(self.refused)}]")

    @functools.cached_property
    def _blank(self) -> re.Pattern[str]:
        return re.compile(f"[{_char_class(_BLANK)}]+")

    def shows_nothing(self, value: str) -> bool:
        """Whether ``value`` is empty or only spaces and invisible characters."""
        return not value or self._blank.fullmatch(value) is not None

    def problem(self, value: str) -> str | None:
        """Why ``value`` is refused, or ``None``."""
        found = self._forbidden.search(value)
        if found is not None:
            code = ord(found.group())
            return (
                f"must not contain U+{code:04X} (controls, invisible and format characters, "
                "line separators, private-use characters and non-characters are refused)"
            )
        if value and self.shows_nothing(value):
            return "must show some text: not only spaces or invisible characters"
        return None

    def check(self, value: str) -> str:
        """``value`` if the rule allows it, else a ``ValueError`` saying why."""
        reason = self.problem(value)
        if reason is not None:
            raise ValueError(reason)
        return value


_INVISIBLE = re.compile(f"[{_char_class(_FORMAT)}]")
# A name on one line (a title, a person, a character): no tab or line break.
LINE = TextRule(_LINE_REFUSED)
# Prose (a synopsis): tabs and line breaks allowed.
PROSE = TextRule(_PROSE_REFUSED)


def strip_invisible(text: str) -> str:
    """``text`` without the format characters :data:`LINE` and :data:`PROSE` refuse.

    For scraped text (the importer), as whitespace is collapsed there: what a
    writer of the API would be told to remove, a source had no say in.
    """
    return _INVISIBLE.sub("", text)
