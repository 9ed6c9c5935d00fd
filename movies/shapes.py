"""The response bodies of the API, typed once: what selectors and services return
and rendering serialises, and what the OpenAPI document describes.

They are TypedDicts, so the hot path keeps building plain dicts for orjson (a
TypedDict costs nothing at run time) while mypy checks their keys;
aioapi.openapi_models makes the document's schemas from these same classes.
``extra="forbid"``: the tests that validate every real response against them
catch a key the code adds and the document does not name. (pydantic needs
typing_extensions' TypedDict before Python 3.12.)
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

FORBID_EXTRA = ConfigDict(extra="forbid")


class _Film(TypedDict):
    # What a film's list entry and its detail both start with, in this order.
    id: int
    title: str
    year: int
    release_date: date | None
    runtime_minutes: int | None
    rating: float | None


@with_config(FORBID_EXTRA)
class ExportedFilm(_Film):
    """A film of the export (``format=json`` and each line of ``ndjson``)."""

    genres: Annotated[list[str], Field(description="Genre names, alphabetical.")]


@with_config(FORBID_EXTRA)
class MovieSummary(_Film):
    poster_url: str
    updated_at: datetime
    genres: Annotated[list[str], Field(description="Genre names, alphabetical.")]


class _Page(TypedDict):
    limit: Annotated[int, Field(description="The page size used.")]
    next: Annotated[
        str | None,
        Field(description="Query string of the next page (a relative reference), or null."),
    ]
    previous: Annotated[
        str | None, Field(description="Query string of the previous page, or null.")
    ]


@with_config(FORBID_EXTRA)
class MovieList(_Page):
    """A page of films."""

    items: list[MovieSummary]


@with_config(FORBID_EXTRA)
class GenreRef(TypedDict):
    slug: str
    name: str


@with_config(FORBID_EXTRA)
class PersonRef(TypedDict):
    id: int
    name: str


@with_config(FORBID_EXTRA)
class CastMember(PersonRef):
    character: str


@with_config(FORBID_EXTRA)
class MovieDetail(_Film):
    """A film with its genres, directors and cast in billing order."""

    synopsis: str
    wikipedia_slug: str
    poster_url: str
    created_at: datetime
    updated_at: datetime
    genres: list[GenreRef]
    directors: list[PersonRef]
    cast: list[CastMember]


@with_config(FORBID_EXTRA)
class GenreCount(GenreRef):
    movie_count: int


@with_config(FORBID_EXTRA)
class GenreList(TypedDict):
    """Every genre with the number of its films."""

    items: list[GenreCount]


@with_config(FORBID_EXTRA)
class PeopleList(_Page):
    """A page of people."""

    items: list[PersonRef]


@with_config(FORBID_EXTRA)
class MovieRef(TypedDict):
    id: int
    title: str
    year: int


@with_config(FORBID_EXTRA)
class FilmographyEntry(TypedDict):
    movie: MovieRef
    role: Literal["cast", "director"]
    character: str


@with_config(FORBID_EXTRA)
class PersonDetail(PersonRef):
    """A person with the first page of their filmography, newest first (then by
    title, film and role), and where the rest of it starts."""

    filmography: Annotated[
        list[FilmographyEntry],
        Field(
            description="The first page of the filmography: as many credits as a page "
            "of `/api/people/{id}/films` has by default."
        ),
    ]
    filmography_next: Annotated[
        str | None,
        Field(
            description="The rest of the filmography, or null: a relative reference to "
            "this person's URL (`42/films?limit=20&cursor=...` from `/api/people/42`), "
            "the next page of `/api/people/{id}/films`."
        ),
    ]


@with_config(FORBID_EXTRA)
class Filmography(_Page):
    """A page of a person's filmography, newest first (then by title, film and role)."""

    items: list[FilmographyEntry]
