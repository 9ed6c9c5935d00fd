"""What a service refuses, in the catalogue's own terms: no HTTP status here.

Services (movies.services) raise these; :func:`movies.problems.problem_of` is the
one place that says which problem (and status) each is, for aioapi's error
middleware and the Django views alike.
"""

from __future__ import annotations


class DomainError(Exception):
    """A write the catalogue refuses; ``detail`` says what to fix."""

    def __init__(self, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class NotFound(DomainError):
    """The resource the write names does not exist."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} does not exist.")


class VersionConflict(DomainError):
    """The resource changed since the version the writer read."""


class Invalid(DomainError):
    """Values that are well formed but name nothing the catalogue holds (a genre, a
    person); ``errors`` names each, as a field error."""
