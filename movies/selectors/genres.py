"""One genre's read: the genre and the number of films in it, one statement."""

from __future__ import annotations

from typing import cast

from movies.models import Genre
from movies.shapes import GenreCount


def get_genre(slug: str) -> GenreCount | None:
    """The genre ``slug`` names with its number of films (kept on its row, as the
    list reads it: movies.genre_copies), ``None`` if none has it."""
    row = Genre.objects.filter(slug=slug).values("slug", "name", "movie_count").first()
    return cast("GenreCount | None", row)
