"""A deterministic synthetic catalogue for load tests: ``manage.py generate_movies``."""

from movies.synthetic.factory import GENRES, FilmFactory, SyntheticFilm, person_name, source_key
from movies.synthetic.loading import (
    GenerateError,
    GenerateReport,
    default_people,
    generate_catalogue,
)

__all__ = [
    "GENRES",
    "FilmFactory",
    "GenerateError",
    "GenerateReport",
    "SyntheticFilm",
    "default_people",
    "generate_catalogue",
    "person_name",
    "source_key",
]
