"""Every ORM read of the catalogue. Each selector a handler or view calls returns
evaluated data (dicts, lists, dataclasses), so that nothing lazy can escape the
thread it runs on; both servers call these same functions. One is lazy on
purpose: :func:`filtered_movies` hands the export (movies.export) the QuerySet it
streams, on the thread that iterates it.

The hot reads are written with the ORM as always, but compiled once per query
shape and run with each request's values bound (movies/prepared.py): a shape's
key names everything that changes the SQL text, a ``Param`` every value that
only changes its parameters.
"""

from movies.cursors import Page
from movies.schemas import MovieListQuery
from movies.selectors.films import filtered_movies, get_movie, list_sorted, sort_order
from movies.selectors.people import get_person, list_genres, list_people
from movies.selectors.ranked import list_by_relevance
from movies.shapes import MovieSummary

__all__ = [
    "filtered_movies",
    "get_movie",
    "get_person",
    "list_genres",
    "list_movies",
    "list_people",
    "sort_order",
]


def list_movies(query: MovieListQuery) -> Page[MovieSummary]:
    """A page of films: a search without a sort in relevance order
    (movies.selectors.ranked), anything else in its sort's (movies.selectors.films)."""
    if query.sort == "relevance":
        return list_by_relevance(query)
    return list_sorted(query)
