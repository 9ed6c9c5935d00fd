"""One genre's read: the genre and the number of films in it, one statement."""

from __future__ import annotations

from typing import cast

from django.db.models import Count

from movies.models import Genre
from movies.shapes import GenreCount


def get_genre(slug: str) -> GenreCount | None:
    """The genre ``slug`` names with its number of films, ``None`` if none has it."""
    genres = Genre.objects.filter(slug=slug).annotate(movie_count=Count("movies"))
    return cast("GenreCount | None", genres.values("slug", "name", "movie_count").first())
