"""Bodies of responses, byte-identical on both servers (their validators and
caching headers: movies.conditional; a list page's body, with its links, is
movies.cursors.Page.body).
"""

from __future__ import annotations

from typing import Any

import orjson

from movies.conditional import Representation
from movies.models import row_version
from movies.selectors.people import FIRST_FILMS_PAGE, PersonFilms
from movies.shapes import MovieDetail


def dumps(payload: Any) -> bytes:
    return orjson.dumps(payload)


def movie_detail_body(movie: MovieDetail) -> Representation:
    """A film's detail, carrying the version of its row (its ETag names it)."""
    return Representation.of(orjson.dumps(movie), row_version(movie["updated_at"]))


def person_detail_body(found: PersonFilms) -> bytes:
    """A person with the first page of their filmography and the link to the next
    (written, as every link is, by movies.cursors.Page.body)."""
    return found.page.body(FIRST_FILMS_PAGE, person=found.person)
