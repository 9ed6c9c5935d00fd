"""Django validators of the catalogue's models: the rules the API and the importer
apply (movies.text, movies.posters), for the admin's forms and ``full_clean``."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from movies.posters import poster_problem
from movies.text import LINE, PROSE


def _refuse(what: str, reason: str | None) -> None:
    if reason is not None:
        raise ValidationError(f"{what} {reason}.", code="invalid")


def validate_line(value: str) -> None:
    """One-line text by :data:`movies.text.LINE` (titles, names, characters)."""
    _refuse("The text", LINE.problem(value))


def validate_prose(value: str) -> None:
    """Prose by :data:`movies.text.PROSE` (a synopsis)."""
    _refuse("The text", PROSE.problem(value))


def validate_poster_url(value: str) -> None:
    """A poster on a public host (:func:`movies.posters.poster_problem`)."""
    _refuse("The URL", poster_problem(value))
