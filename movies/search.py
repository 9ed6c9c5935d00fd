"""Full-text search over title and synopsis on PostgreSQL.

The index in migration 0002 and the queries in selectors are built from the same
expression, so PostgreSQL can match the query to the index.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Expression

from movies.prepared import Param

SEARCH_CONFIG = "english"

# websearch_to_tsquery reads every "-" as NOT while it waits for a word, skipping
# spaces and the characters !&|()< there, and PostgreSQL stacks pending operators
# 32 deep: "-" 33 times, or "(-" or "- " repeated, is an error ("tsquery stack too
# small"), not a search. Only a run of NOTs can grow that stack (the binary
# operators unwind it), so a run of them is searched as the one NOT it means.
_NOT_RUN = re.compile(r"-(?:[\s!&|()<]*-)+")


def websearch_text(text: str) -> str:
    """``text`` as websearch_to_tsquery can always parse it."""
    return _NOT_RUN.sub("-", text)


class SearchText(Param):
    """The user's words, bound as websearch_to_tsquery's input (made safe first)."""

    def bind(self, value: Any, connection: BaseDatabaseWrapper) -> Any:
        return super().bind(websearch_text(value), connection)


def movie_search_vector() -> SearchVector:
    return SearchVector("title", "synopsis", config=SEARCH_CONFIG)


def movie_search_query(text: str | Expression) -> SearchQuery:
    """``text`` is the user's words, or a Param standing for them (movies.prepared)."""
    if isinstance(text, str):
        text = websearch_text(text)
    elif isinstance(text, Param):
        text = SearchText(text.name, text.output_field)
    return SearchQuery(text, config=SEARCH_CONFIG, search_type="websearch")
