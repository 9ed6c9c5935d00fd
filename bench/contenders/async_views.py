"""The comparison views as async Django views (``/async/movies/``), written as Django's
"Asynchronous support" page says: the ORM only through ``sync_to_async`` (default
``thread_sensitive=True``) on selectors that return evaluated data. Parsing, errors,
the ETag and the conditional GET are ``movies.views.read_view``'s: the same bytes."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest

from movies import selectors
from movies.views import detail_body, detail_key, list_query, read_view

# One wrapper each, made once: sync_to_async builds an object per call otherwise.
_list_movies = sync_to_async(selectors.list_movies)
_get_movie = sync_to_async(selectors.get_movie)


@read_view
async def movie_list(request: HttpRequest) -> bytes:
    """``GET /async/movies/``: the same list as ``GET /movies/``."""
    query = list_query(request)
    return (await _list_movies(query)).body(query)


@read_view
async def movie_detail(request: HttpRequest, movie_id: str) -> bytes:
    """``GET /async/movies/{id}/``: the same film as ``GET /movies/{id}/``."""
    key = detail_key(request, movie_id)
    return detail_body(await _get_movie(key) if key is not None else None)
