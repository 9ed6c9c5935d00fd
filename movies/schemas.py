"""Request schemas shared by both servers: what the code validates and what
OpenAPI documents come from these same classes.

Query strings are parsed here from (name, value) pairs, so aiohttp's MultiDict
and Django's QueryDict give the same result and the same errors.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from movies.cursors import Cursor, decode_cursor
from movies.models import MAX_ID, MAX_YEAR, MIN_YEAR
from movies.problems import Problem, invalid_parameters

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
# Deeper than this, OFFSET makes the database walk every skipped row: use the cursor.
MAX_OFFSET = 10_000


def _printable(value: str) -> str:
    # NUL and other control characters are rejected here, not by the database
    # (PostgreSQL refuses NUL in text with an error that would become a 500).
    if any(ord(char) < 0x20 and char not in "\t\n\r" for char in value):
        raise ValueError("must not contain control characters")
    if "\ufffd" in value:
        raise ValueError("must be valid UTF-8")
    return value


# The same rule as a pattern, for the OpenAPI document only: _printable gives the
# readable error message.
PRINTABLE_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\ufffd]*$"
Text = Annotated[
    str, AfterValidator(_printable), Field(json_schema_extra={"pattern": PRINTABLE_PATTERN})
]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=64)]


def _whole_number(value: object) -> object:
    # JSON Schema counts 1999.0 as an integer; pydantic's strict mode would not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Integer = Annotated[int, BeforeValidator(_whole_number)]
Year = Annotated[int, Field(ge=MIN_YEAR, le=MAX_YEAR), BeforeValidator(_whole_number)]
Id = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_whole_number)]
Minutes = Annotated[int, Field(ge=1, le=1000), BeforeValidator(_whole_number)]

MovieSort = Literal[
    "title", "-title", "year", "-year", "rating", "-rating",
    "updated_at", "-updated_at", "created_at", "-created_at", "id", "-id",
]  # fmt: skip


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# The filters the list and the export share, defined once; each query class still
# declares them itself, so its parameters keep their order in links and in OpenAPI.
GenreFilter = Annotated[Slug | None, Field(description="Genre slug.")]
PersonFilter = Annotated[Id | None, Field(description="Films crediting this person id.")]
SearchFilter = Annotated[
    Text | None,
    Field(
        min_length=1,
        max_length=200,
        description="Search: full text over title and synopsis on PostgreSQL, "
        "title substring on SQLite.",
    ),
]


def _check_year_range(year_min: int | None, year_max: int | None) -> None:
    if year_min is not None and year_max is not None and year_min > year_max:
        raise ValueError("year_min must not be greater than year_max")


class MovieListQuery(_Query):
    """Filters, sort and pagination of ``GET /api/movies``."""

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size.")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Rows to skip (shallow pages).")
    cursor: str | None = Field(
        None, max_length=512, description="Opaque keyset cursor from a `next`/`previous` link."
    )
    genre: GenreFilter = None
    year: Year | None = None
    year_min: Year | None = None
    year_max: Year | None = None
    person: PersonFilter = None
    q: SearchFilter = None
    sort: MovieSort = "title"
    _after: Cursor | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_year_range(self.year_min, self.year_max)
        if self.cursor is not None and self.offset:
            raise ValueError("use either cursor or offset, not both")
        if self.cursor is not None:
            # Decoded once, here: a damaged cursor is the 400 problem naming `cursor`.
            self._after = decode_cursor(self.cursor, self.sort)
        return self

    @property
    def after(self) -> Cursor | None:
        """The decoded ``cursor``: the boundary row a page starts after (or before)."""
        return self._after


ExportFormat = Literal["ndjson", "json", "csv"]


class MovieExportQuery(_Query):
    """Filters and sort of ``GET /api/movies/export``: the list's, without paging."""

    genre: GenreFilter = None
    year: Year | None = None
    year_min: Year | None = None
    year_max: Year | None = None
    person: PersonFilter = None
    q: SearchFilter = None
    sort: MovieSort = Field(
        "id", description="As the list's; `id` by default: the cheapest order, and stable."
    )
    format: ExportFormat = Field(
        "ndjson", description="`ndjson` (one film per line), `json` (one array) or `csv`."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_year_range(self.year_min, self.year_max)
        return self


class PeopleListQuery(_Query):
    """Search and pagination of ``GET /api/people``."""

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    q: Text | None = Field(None, min_length=1, max_length=200, description="Name substring.")


class CreditIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person_id: Id
    role: Literal["cast", "director"] = "cast"
    billing_order: Integer = Field(0, ge=0, le=10_000)
    character_name: Text = Field("", max_length=200)


# The default of an omitted PATCH field ("leave it as it is"). Typed Any because
# it is not a valid *value* of these fields: an explicit null is a 400.
UNCHANGED: Any = None


def _distinct_credits(credits: list[CreditIn]) -> list[CreditIn]:
    # The database allows one credit per (person, role): say so before it refuses.
    seen: set[tuple[int, str]] = set()
    for credit in credits:
        key = (credit.person_id, credit.role)
        if key in seen:
            raise ValueError(f"person {credit.person_id} is credited twice as {credit.role}")
        seen.add(key)
    return credits


class MovieFields(BaseModel):
    """Writable fields of a film; every one optional (the PATCH body).

    An omitted field is left unchanged. Only the nullable columns accept
    ``null`` (it clears them); the others are cleared with ``""`` or ``[]``.
    """

    model_config = ConfigDict(extra="forbid")

    title: Text = Field(UNCHANGED, min_length=1, max_length=300)
    year: Year = UNCHANGED
    release_date: date | None = None
    runtime_minutes: Minutes | None = None
    rating: float | None = Field(None, ge=0, le=10, allow_inf_nan=False)
    synopsis: Text = Field(UNCHANGED, max_length=20_000)
    wikipedia_slug: Text = Field(UNCHANGED, max_length=300)
    poster_url: str = Field(UNCHANGED, max_length=500, pattern=r"^(https?://[^\s\x00-\x1f\x7f]+)?$")
    genres: list[Slug] = Field(UNCHANGED, max_length=30, description="Genre slugs.")
    credits: Annotated[list[CreditIn], AfterValidator(_distinct_credits)] = Field(
        UNCHANGED, max_length=500, description="Replaces all credits of the film."
    )


class MovieCreate(MovieFields):
    """The POST body: ``title`` and ``year`` are required."""

    title: Text = Field(min_length=1, max_length=300)
    year: Year


QueryModel = TypeVar("QueryModel", bound=_Query)
BodyModel = TypeVar("BodyModel", bound=BaseModel)


def _field_errors(error: ValidationError, unknown: str) -> list[dict[str, str]]:
    details = error.errors(include_url=False, include_input=False)
    return [_describe(detail, unknown) for detail in details]


def _describe(detail: ErrorDetails, unknown: str) -> dict[str, str]:
    name = ".".join(str(part) for part in detail["loc"]) or "(body)"
    if detail["type"] == "extra_forbidden":
        return {"name": name, "reason": unknown}
    return {"name": name, "reason": detail["msg"].removeprefix("Value error, ")}


def parse_query(model: type[QueryModel], items: Iterable[tuple[str, str]]) -> QueryModel:
    """Validate query-string pairs into ``model``; a problem names each bad parameter."""
    values: dict[str, str] = {}
    repeated: list[dict[str, str]] = []
    for name, value in items:
        if name in values:
            repeated.append({"name": name, "reason": "given more than once"})
        values[name] = value
    if repeated:
        raise invalid_parameters(repeated)
    try:
        return model.model_validate(values)
    except ValidationError as error:
        errors = _field_errors(error, "unknown parameter")
        # A model-level rule has no location: name the parameters it is about.
        for entry in errors:
            if entry["name"] == "(body)":
                entry["name"] = _parameters_named_in(entry["reason"], values)
        raise invalid_parameters(errors) from None


def _parameters_named_in(reason: str, values: dict[str, str]) -> str:
    named = [name for name in values if name in reason]
    return ", ".join(named) or "query"


def parse_body(model: type[BodyModel], raw: bytes) -> BodyModel:
    """Validate a JSON request body; malformed JSON and bad fields are 400s."""
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as error:
        details = error.errors(include_url=False, include_input=False)
        if any(detail["type"] == "json_invalid" for detail in details):
            raise Problem(400, "The request body is not valid JSON.") from None
        if any(detail["type"] == "model_type" and not detail["loc"] for detail in details):
            raise Problem(400, "The request body must be a JSON object.") from None
        errors = _field_errors(error, "unknown field")
        raise invalid_parameters(errors, location="body") from None


def parse_id(raw: str) -> int | None:
    """A path id: a positive 64-bit integer in plain digits, else ``None`` (a 404)."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_ID else None
