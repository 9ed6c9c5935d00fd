"""Bodies of responses, byte-identical on both servers (their validators and
caching headers: movies.conditional; a list page's body, with its links, is
movies.cursors.Page.body).
"""

from __future__ import annotations

from typing import Any

import orjson

from movies.conditional import Representation
from movies.models import row_version
from movies.shapes import MovieDetail


def dumps(payload: Any) -> bytes:
    return orjson.dumps(payload)


def movie_detail_body(movie: MovieDetail) -> Representation:
    """A film's detail, carrying the version of its row (its ETag names it)."""
    return Representation.of(orjson.dumps(movie), row_version(movie["updated_at"]))
