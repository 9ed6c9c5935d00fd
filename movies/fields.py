"""The text types request fields are built from: free text by its rules, slugs and
poster URLs (whole numbers, as query strings spell them, are movies.schemas').

Each type carries both its check (with a readable reason) and the pattern or
bounds the OpenAPI document shows, so the two cannot disagree.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from movies.posters import poster_problem
from movies.text import LINE, PROSE


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
SLUG_MAX_LENGTH = 64  # Genre.slug's column
Slug = Annotated[str, Field(pattern=SLUG_PATTERN, max_length=SLUG_MAX_LENGTH)]

# Free text by movies.text's rule, with the rule's pattern in the OpenAPI document.
# A name on one line (a title, a character): no tab or line break, not blank.
Line = Annotated[
    str, AfterValidator(LINE.check), Field(json_schema_extra={"pattern": LINE.pattern})
]
# Prose (a synopsis): line breaks and tabs allowed.
Prose = Annotated[
    str, AfterValidator(PROSE.check), Field(json_schema_extra={"pattern": PROSE.pattern})
]


def _public_poster(value: str) -> str:
    reason = poster_problem(value)
    if reason is not None:
        raise ValueError(reason)
    return value


# An http(s) URL on a public host, or "" (no poster): movies.posters says which hosts.
PosterUrl = Annotated[
    str,
    Field(max_length=500, pattern=r"^(https?://[^\s\x00-\x1f\x7f]+)?$"),
    AfterValidator(_public_poster),
]
