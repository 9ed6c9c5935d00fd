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

from movies.selectors.films import filtered_movies, get_movie, list_movies, sort_order
from movies.selectors.people import get_filmography, get_person, list_genres, list_people

__all__ = [
    "filtered_movies",
    "get_filmography",
    "get_movie",
    "get_person",
    "list_genres",
    "list_movies",
    "list_people",
    "sort_order",
]
