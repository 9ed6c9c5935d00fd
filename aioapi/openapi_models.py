"""Response bodies of the API as pydantic models, for the OpenAPI document only.

The server renders plain dicts with orjson (movies.rendering); these models
describe those bytes. They forbid extra keys, so the tests that validate every
real response against them catch any drift between the two.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Page(_Body):
    limit: int = Field(description="The page size used.")
    next: str | None = Field(
        description="Query string of the next page (a relative reference), or null."
    )
    previous: str | None = Field(description="Query string of the previous page, or null.")


class MovieSummary(_Body):
    id: int
    title: str
    year: int
    release_date: date | None
    runtime_minutes: int | None
    rating: float | None
    poster_url: str
    updated_at: datetime
    genres: list[str] = Field(description="Genre names, alphabetical.")


class MovieList(_Page):
    """A page of films."""

    items: list[MovieSummary]


class GenreRef(_Body):
    slug: str
    name: str


class PersonRef(_Body):
    id: int
    name: str


class CastMember(PersonRef):
    character: str


class MovieDetail(_Body):
    """A film with its genres, directors and cast in billing order."""

    id: int
    title: str
    year: int
    release_date: date | None
    runtime_minutes: int | None
    rating: float | None
    synopsis: str
    wikipedia_slug: str
    poster_url: str
    created_at: datetime
    updated_at: datetime
    genres: list[GenreRef]
    directors: list[PersonRef]
    cast: list[CastMember]


class GenreCount(GenreRef):
    movie_count: int


class GenreList(_Body):
    """Every genre with the number of its films."""

    items: list[GenreCount]


class PeopleList(_Page):
    """A page of people."""

    items: list[PersonRef]


class MovieRef(_Body):
    id: int
    title: str
    year: int


class FilmographyEntry(_Body):
    movie: MovieRef
    role: Literal["cast", "director"]
    character: str


class PersonDetail(PersonRef):
    """A person with their filmography, newest first."""

    filmography: list[FilmographyEntry]


class FieldError(_Body):
    name: str = Field(description="The parameter or body field, dotted for nested ones.")
    reason: str


class ProblemDetails(_Body):
    """RFC 9457 problem details: the shape of every error."""

    type: str = Field(description="Always about:blank: the status says what went wrong.")
    title: str
    status: int
    detail: str = Field(description="What to fix.")
    errors: list[FieldError] = Field(
        default_factory=list, description="Each invalid parameter or field (400 and 422 only)."
    )


class Status(_Body):
    """A probe's answer."""

    status: Literal["ok", "ready"]
