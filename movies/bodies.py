"""The write bodies, for both servers: their models (what the code validates and
what OpenAPI documents come from these same classes) and their parsing, strict,
with every failure a problem naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import date
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from movies.fields import Line, PosterUrl, Prose, Slug
from movies.json_check import check_json
from movies.problems import Problem, invalid_parameters
from movies.schemas import Id, Integer, Minutes, Year, field_errors

Item = TypeVar("Item")
BodyModel = TypeVar("BodyModel", bound=BaseModel)


def parse_body(model: type[BodyModel], raw: bytes) -> BodyModel:
    """Validate a JSON request body; malformed JSON and bad fields are 400s.

    Strict: a JSON integer field takes only an integer literal (``2000``, not
    ``2000.0``, ``2e3`` or ``"2000"``). What the model cannot see (a key given
    twice, a number that is not finite or underflows to 0) is :func:`check_json`'s.
    """
    try:
        body = model.model_validate_json(raw, strict=True)
    except ValidationError as error:
        details = error.errors(include_url=False, include_input=False)
        if any(detail["type"] == "json_invalid" for detail in details):
            raise Problem(400, "The request body is not valid JSON.") from None
        if any(detail["type"] == "model_type" and not detail["loc"] for detail in details):
            raise Problem(400, "The request body must be a JSON object.") from None
        errors = field_errors(error, "unknown field")
        raise invalid_parameters(errors, location="body") from None
    if errors := check_json(raw):
        raise invalid_parameters(errors, location="body")
    return body


class CreditIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person_id: Id
    role: Literal["cast", "director"] = "cast"
    billing_order: Integer = Field(0, ge=0, le=10_000)
    character_name: Line = Field("", max_length=200)


# The default of an omitted PATCH field ("leave it as it is"). Typed Any because
# it is not a valid *value* of these fields: an explicit null is a 400.
UNCHANGED: Any = None


def _distinct_credits(credits: list[CreditIn]) -> list[CreditIn]:
    # The database allows one credit per (person, role): say so before it refuses.
    return _distinct(
        credits,
        key=lambda credit: (credit.person_id, credit.role),
        twice=lambda credit: f"person {credit.person_id} is credited twice as {credit.role}",
    )


def _distinct_genres(genres: list[str]) -> list[str]:
    return _distinct(
        genres, key=lambda slug: slug, twice=lambda slug: f"genre {slug!r} is given twice"
    )


def _distinct(
    items: list[Item], *, key: Callable[[Item], Hashable], twice: Callable[[Item], str]
) -> list[Item]:
    """The one rule of a film's lists: a genre, or a person in a role, is there once."""
    seen: set[Hashable] = set()
    for item in items:
        if key(item) in seen:
            raise ValueError(twice(item))
        seen.add(key(item))
    return items


class MovieFields(BaseModel):
    """Writable fields of a film; every one optional (the PATCH body).

    An omitted field is left unchanged. Only the nullable columns accept
    ``null`` (it clears them); the others are cleared with ``""`` or ``[]``.
    """

    model_config = ConfigDict(extra="forbid")

    title: Line = Field(UNCHANGED, min_length=1, max_length=300)
    year: Year = UNCHANGED
    release_date: date | None = None
    runtime_minutes: Minutes | None = None
    rating: float | None = Field(None, ge=0, le=10, allow_inf_nan=False)
    synopsis: Prose = Field(UNCHANGED, max_length=20_000)
    wikipedia_slug: Line = Field(UNCHANGED, max_length=300)
    poster_url: PosterUrl = UNCHANGED
    genres: Annotated[list[Slug], AfterValidator(_distinct_genres)] = Field(
        UNCHANGED,
        max_length=30,
        # JSON Schema can say this one (not the credits' rule: unique by two fields).
        json_schema_extra={"uniqueItems": True},
        description="Genre slugs, each once.",
    )
    credits: Annotated[list[CreditIn], AfterValidator(_distinct_credits)] = Field(
        UNCHANGED, max_length=500, description="Replaces all credits of the film."
    )


class MovieCreate(MovieFields):
    """The POST body: ``title`` and ``year`` are required."""

    title: Line = Field(min_length=1, max_length=300)
    year: Year
