"""Full-text search over title and synopsis on PostgreSQL.

The index in migration 0002 and the queries in selectors are built from the same
expression, so PostgreSQL can match the query to the index.
"""

from __future__ import annotations

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db.models import Expression

SEARCH_CONFIG = "english"


def movie_search_vector() -> SearchVector:
    return SearchVector("title", "synopsis", config=SEARCH_CONFIG)


def movie_search_query(text: str | Expression) -> SearchQuery:
    """``text`` is the user's words, or a Param standing for them (movies.prepared)."""
    return SearchQuery(text, config=SEARCH_CONFIG, search_type="websearch")
