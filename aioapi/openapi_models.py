"""Response bodies of the API as pydantic models, for the OpenAPI document.

The bodies the code builds are typed once, in movies.shapes; the models of those
are made from them here. The problem and probe bodies, built outside selectors,
are declared here. They forbid extra keys, so the tests that validate every real
response against them catch any drift between the two.
"""

from __future__ import annotations

from typing import Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from movies import shapes


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def documented(shape: type[Any]) -> type[BaseModel]:
    """The model of a response shape: its keys, types, descriptions and docstring
    (one per shape, however often a route asks: the document names it once)."""
    model = _MODELS.get(shape)
    if model is None:
        model = _MODELS[shape] = _model_of(shape)
    return model


# Filled at import, by the route table (aioapi.routes) and the models below.
_MODELS: dict[type[Any], type[BaseModel]] = {}


def _model_of(shape: type[Any]) -> type[BaseModel]:
    hints = get_type_hints(shape, include_extras=True)
    fields: dict[str, Any] = {name: (hint, ...) for name, hint in hints.items()}
    return create_model(
        shape.__name__, __base__=_Body, __doc__=shape.__doc__, __module__=__name__, **fields
    )


MovieList = documented(shapes.MovieList)
MovieDetail = documented(shapes.MovieDetail)
ExportedFilm = documented(shapes.ExportedFilm)
GenreList = documented(shapes.GenreList)
PeopleList = documented(shapes.PeopleList)
PersonDetail = documented(shapes.PersonDetail)
Filmography = documented(shapes.Filmography)


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
