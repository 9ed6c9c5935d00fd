"""Query strings, for both servers: their models (what the code validates and what
OpenAPI documents come from these same classes), the value types they are built
from, and their parsing (:func:`parse_query`, from (name, value) pairs, so
aiohttp's MultiDict and Django's QueryDict give the same result and the same
errors). The write bodies are movies.bodies'.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from movies.cursors import CURSOR_PATTERN, Cursor, decoded
from movies.fields import SLUG_PATTERN, Text
from movies.importing.normalise import normalise_genre
from movies.models import MAX_ID, MAX_YEAR, MIN_YEAR
from movies.problems import invalid_parameters

Item = TypeVar("Item")
QueryModel = TypeVar("QueryModel", bound="QueryParameters")

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
# Deeper than this, OFFSET makes the database walk every skipped row: use the cursor.
MAX_OFFSET = 10_000


MovieSort = Literal[
    "title", "-title", "year", "-year", "rating", "-rating",
    "updated_at", "-updated_at", "created_at", "-created_at", "id", "-id",
]  # fmt: skip
SORT_DESCRIPTION = (
    "Order of the films: a key, ascending, or `-` and the key, descending; ties are "
    "broken by `id` in the same direction. `title`: by title (the database's collation); "
    "`year`: by year of release; `rating`: by average rating (0-10), unrated films last "
    "in both directions; `updated_at`, `created_at`: by when the film was last changed "
    "or added; `id`: by id (the order films were added in)."
)
# The list also sorts by relevance to ``q``: its default when ``q`` is given.
MovieListSort = Literal[MovieSort, "relevance"]
LIST_SORT_DESCRIPTION = (
    f"{SORT_DESCRIPTION} `relevance` (needs `q`, and is the default when `q` is given; "
    "`title` otherwise): the film whose title is the search first, then titles starting "
    "with its words, titles holding them (the last word may be half typed, a long word "
    "may have a typo or two, accents and a leading article do not matter), a year in the "
    "search preferring that year's film, and films crediting a person it names; at most "
    "the 200 best matches, ties broken by `id`."
)


CANONICAL_INTEGER = re.compile(r"0|[1-9][0-9]*")


def _whole_number(value: object) -> object:
    # Query strings and paths spell an integer one way only: plain digits, no sign,
    # underscore, space, decimal point or leading zero ("1_0", " 1", "1.0" and "010"
    # would all be 10 to a lenient parser, and name one cache entry four ways).
    # A JSON body's integers are integer literals: pydantic's strict mode refuses
    # 2000.0, 2e3 and "2000" alike (movies.bodies.parse_body).
    if isinstance(value, str) and not CANONICAL_INTEGER.fullmatch(value):
        raise ValueError("must be a whole number in plain digits (like 10)")
    return value


Integer = Annotated[int, BeforeValidator(_whole_number)]
Year = Annotated[int, Field(ge=MIN_YEAR, le=MAX_YEAR), BeforeValidator(_whole_number)]
Id = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_whole_number)]
Minutes = Annotated[int, Field(ge=1, le=1000), BeforeValidator(_whole_number)]


class QueryParameters(BaseModel):
    """What every query model is: unknown parameters refused, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoQuery(QueryParameters):
    """The query of a route that takes no parameters: any one given is a 400."""


class ParameterConflict(ValueError):
    """A rule between parameters: the error names each of ``names``."""

    def __init__(self, message: str, *names: str) -> None:
        super().__init__(message)
        self.names = names


# The filters the list and the export share, defined once; each query class still
# declares them itself, so its parameters keep their order in links and in OpenAPI.
# Any ASCII letter or digit: what makes a name a genre's slug (normalise_genre).
GENRE_PATTERN = r"^[^\x00-\x1f]*[A-Za-z0-9][^\x00-\x1f]*$"


def _genre_slug(value: str) -> str:
    # A slug is taken as it is; a name ("Comedy", "Science fiction", "Sci-Fi") is
    # turned into its slug the way the importer makes genres, so no query is needed.
    if re.fullmatch(SLUG_PATTERN, value):
        return value
    if not re.fullmatch(GENRE_PATTERN, value):
        raise ValueError("is not a genre: use a slug from /api/genres (like `comedy`)")
    return normalise_genre(value)[0]


GenreName = Annotated[
    str,
    Field(max_length=64, json_schema_extra={"pattern": GENRE_PATTERN}),
    AfterValidator(_genre_slug),
]
GenreFilter = Annotated[
    GenreName | None,
    Field(
        description="A genre's slug from /api/genres (`science-fiction`), or its name "
        "in any case (`Science Fiction`), turned into its slug as genres are made.",
    ),
]
PersonFilter = Annotated[Id | None, Field(description="Films crediting this person id.")]
SearchFilter = Annotated[
    Text | None,
    Field(
        min_length=1,
        max_length=200,
        description="Search. The film list without a `sort` ranks by it (`sort=relevance`). "
        "With a sort (and in the export) it filters: full text over title and synopsis on "
        'PostgreSQL (web search syntax: words, "quoted phrases", `or`, `-word` to exclude), '
        "title substring on SQLite. Any text is a search: text that means nothing finds "
        "nothing.",
    ),
]


def _check_year_range(year_min: int | None, year_max: int | None) -> None:
    if year_min is not None and year_max is not None and year_min > year_max:
        raise ParameterConflict(
            "year_min must not be greater than year_max", "year_min", "year_max"
        )


def _decode_cursor(query: QueryParameters, sort: str) -> None:
    # Once, after the rules between parameters (a cursor given with an offset is
    # that conflict, whatever the cursor holds): a bad cursor is a 400 naming it.
    try:
        decoded(query, sort)
    except ValueError as error:
        raise ParameterConflict(str(error), "cursor") from None


class MovieListQuery(QueryParameters):
    """Filters, sort and pagination of ``GET /api/movies``."""

    limit: Integer = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size.")
    offset: Integer = Field(0, ge=0, le=MAX_OFFSET, description="Rows to skip (shallow pages).")
    cursor: Cursor | None = Field(
        None,
        # Documented, not enforced here: Cursor.decode refuses the same, as a bad cursor.
        json_schema_extra={"pattern": CURSOR_PATTERN},
        description="Opaque keyset cursor: copy it from a `next`/`previous` link, never "
        "make one. Only cursors this API wrote are accepted; any other string, however "
        "well formed, is a 400 naming `cursor`.",
    )
    genre: GenreFilter = None
    year: Year | None = None
    year_min: Year | None = None
    year_max: Year | None = None
    person: PersonFilter = None
    q: SearchFilter = None
    sort: MovieListSort = Field("title", description=LIST_SORT_DESCRIPTION)

    @model_validator(mode="wrap")
    @classmethod
    def _consistent(cls, data: Any, fields: ModelWrapValidatorHandler[Self]) -> Self:
        # One validator around the fields' own (a layer less on every request):
        # before them, a search without a sort is in relevance order, and says so
        # in its links; after them, the rules between parameters.
        if isinstance(data, dict) and "sort" not in data and data.get("q"):
            data = {**data, "sort": "relevance"}
        query = fields(data)
        if query.year_min is not None and query.year_max is not None:
            _check_year_range(query.year_min, query.year_max)
        if query.sort == "relevance" and query.q is None:
            raise ParameterConflict("sort=relevance needs q, the search it ranks by", "sort")
        if query.cursor is not None and query.offset:
            raise ParameterConflict("use either cursor or offset, not both", "cursor", "offset")
        if query.cursor is not None:
            _decode_cursor(query, query.sort)
        return query


ExportFormat = Literal["ndjson", "json", "csv"]


class MovieExportQuery(QueryParameters):
    """Filters and sort of ``GET /api/movies/export``: the list's, without paging."""

    genre: GenreFilter = None
    year: Year | None = None
    year_min: Year | None = None
    year_max: Year | None = None
    person: PersonFilter = None
    q: SearchFilter = None
    sort: MovieSort = Field(
        "id", description=f"{SORT_DESCRIPTION} `id` by default: the cheapest order, and stable."
    )
    format: ExportFormat = Field(
        "ndjson", description="`ndjson` (one film per line), `json` (one array) or `csv`."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_year_range(self.year_min, self.year_max)
        return self


# People have one order: by name, then id; their cursors carry it as their sort.
PEOPLE_SORT = "name"


class PeopleListQuery(QueryParameters):
    """Search and pagination of ``GET /api/people``."""

    limit: Integer = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size.")
    offset: Integer = Field(0, ge=0, le=MAX_OFFSET, description="Rows to skip (shallow pages).")
    cursor: Cursor | None = Field(
        None,
        json_schema_extra={"pattern": CURSOR_PATTERN},
        description="Opaque keyset cursor: copy it from a `next`/`previous` link, never "
        "make one. Only cursors this API wrote for people are accepted.",
    )
    q: Text | None = Field(None, min_length=1, max_length=200, description="Name substring.")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.cursor is not None and self.offset:
            raise ParameterConflict("use either cursor or offset, not both", "cursor", "offset")
        if self.cursor is not None:
            _decode_cursor(self, PEOPLE_SORT)
        return self


# A person's filmography has one order: newest first, then title, film and role.
FILMOGRAPHY_SORT = "filmography"


class FilmographyQuery(QueryParameters):
    """Pagination of ``GET /api/people/{id}/films``: keyset only. The first page is
    the one the person's detail embeds; every other page is a ``next``/``previous``
    link, so there is no offset to walk."""

    limit: Integer = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size.")
    cursor: Cursor | None = Field(
        None,
        json_schema_extra={"pattern": CURSOR_PATTERN},
        description="Opaque keyset cursor: copy it from a `next`/`previous` link (or the "
        "person's `filmography_next`), never make one. Only cursors this API wrote for "
        "a filmography are accepted.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.cursor is not None:
            _decode_cursor(self, FILMOGRAPHY_SORT)
        return self


def field_errors(error: ValidationError, unknown: str) -> list[dict[str, str]]:
    """The entries of a problem's ``errors``: one per parameter or field ``error``
    names (``unknown``: the reason given for one the model does not know)."""
    details = error.errors(include_url=False, include_input=False)
    return [entry for detail in details for entry in _describe(detail, unknown)]


def _describe(detail: ErrorDetails, unknown: str) -> list[dict[str, str]]:
    """The error entries of one failure: one per parameter or field it is about."""
    reason = detail["msg"].removeprefix("Value error, ")
    conflict = detail.get("ctx", {}).get("error")
    if isinstance(conflict, ParameterConflict):
        return [{"name": name, "reason": reason} for name in conflict.names]
    # Only a body's own rules fail at the root: a query's names its parameters.
    name = ".".join(str(part) for part in detail["loc"]) if detail["loc"] else "(body)"
    if detail["type"] == "extra_forbidden":
        return [{"name": name, "reason": unknown}]
    return [{"name": name, "reason": reason}]


def parse_query(model: type[QueryModel], items: Iterable[tuple[str, str]]) -> QueryModel:
    """Validate query-string pairs into ``model``; a problem names each bad parameter."""
    values: dict[str, str] = {}
    refused: list[dict[str, str]] = []
    for name, value in items:
        if not name:  # "?=x", "?&=": named as given, an empty name
            refused.append({"name": "", "reason": "a parameter must have a name"})
        elif name in values:
            refused.append({"name": name, "reason": "given more than once"})
        values[name] = value
    if refused:
        raise invalid_parameters(refused)
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise invalid_parameters(field_errors(error, "unknown parameter")) from None
