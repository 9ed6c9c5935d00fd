"""The OpenAPI 3.1 document of the API, built with openapi-pydantic.

Each operation is declared with its route (aioapi.routes); this module assembles
them into paths. Parameters and request bodies come from the very pydantic
classes that validate them (movies.schemas for queries, movies.bodies for bodies); response
bodies from aioapi.openapi_models. Every error status an operation can answer is
listed, with the problem shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Protocol

import orjson
from django.conf import settings
from openapi_pydantic import (
    Components,
    Info,
    License,
    OpenAPI,
    Operation,
    PathItem,
    Response,
    Server,
)
from openapi_pydantic.util import construct_open_api_with_schema_class

from aioapi import openapi_models as bodies
from aioapi.openapi_builders import (
    ERRORS,
    JSON,
    PUBLIC,
    bearer_scheme,
    error_refs,
    error_response,
    header_parameter,
    media,
    query_parameters,
    response_headers,
    schema_ref,
)
from movies.changes import KINDS, OPS
from movies.export import COMPLETENESS, DOWNLOADS
from movies.models import MAX_ID
from movies.parsing import EVENT_ID_PATTERN
from movies.schemas import MovieExportQuery


class Documented(Protocol):
    """What the document reads of a route (aioapi.routes.Route), which imports this
    module's operation builders: a protocol, not an import back."""

    @property
    def method(self) -> str: ...

    @property
    def doc(self) -> Operation: ...

    @property
    def doc_path(self) -> str: ...


API_VERSION = "1.0.0"


def openapi_body(routes: Iterable[Documented]) -> bytes:
    """The OpenAPI document of ``routes`` (aioapi.routes.ROUTES), rendered once."""
    return orjson.dumps(build_openapi(routes))


def build_openapi(routes: Iterable[Documented]) -> dict[str, Any]:
    """The whole document of ``routes`` (aioapi.routes.ROUTES) as a JSON-ready dict."""
    operations: dict[str, dict[str, Operation]] = {}
    for route in routes:
        operations.setdefault(route.doc_path, {})[route.method.lower()] = route.doc
    paths = {path: PathItem.model_validate(item) for path, item in operations.items()}
    document = OpenAPI(
        openapi="3.1.0",
        info=Info(
            title="mymoviedb API",
            version=API_VERSION,
            description="The public film catalogue. Errors are RFC 9457 problem details. "
            "A query parameter an operation does not list is a 400 naming it.",
            license=License(name="MIT", identifier="MIT"),
        ),
        # Where clients generated from this document send requests by default: the
        # public address when it is configured, else the server that served it.
        servers=[Server(url=settings.API_PUBLIC_URL or "/")],
        paths=paths,
        components=Components(
            responses={name: error_response(status) for status, (name, _, _) in ERRORS.items()},
            securitySchemes={"bearerAuth": bearer_scheme()},
        ),
    )
    document = construct_open_api_with_schema_class(
        document, schema_classes=[bodies.ProblemDetails]
    )
    # exclude_unset: openapi-pydantic's own defaults (allowEmptyValue on a header
    # parameter, ...) are not all valid where they would land.
    dumped = document.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)
    return _named_enums(_exact_bounds(dumped))


BOUNDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})


def _exact_bounds(node: Any) -> Any:
    """openapi-pydantic keeps numeric bounds as floats, and float(MAX_ID) is 2**63:
    give integer bounds back their exact value."""
    if isinstance(node, dict):
        return {
            key: _exact_int(value) if key in BOUNDS else _exact_bounds(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_exact_bounds(item) for item in node]
    return node


def _named_enums(node: Any) -> Any:
    """Every enum of strings with ``x-enum-varnames``: generators name members from
    them (openapi-python-client makes ``-title`` VALUE_1 without), not from the order.
    Added to the dump: openapi-pydantic's traversal trips on extension keys."""
    if isinstance(node, list):
        return [_named_enums(item) for item in node]
    if not isinstance(node, dict):
        return node
    named = {key: _named_enums(value) for key, value in node.items()}
    values = node.get("enum")
    if isinstance(values, list) and all(isinstance(value, str) for value in values):
        named["x-enum-varnames"] = [enum_varname(value) for value in values]
    return named


def enum_varname(value: str) -> str:
    """A constant's name for an enum value: ``-title`` -> ``TITLE_DESC``."""
    name = re.sub(r"[^0-9A-Za-z]+", "_", value.removeprefix("-")).strip("_").upper()
    return f"{name}_DESC" if value.startswith("-") else name


def _exact_int(value: Any) -> Any:
    if value == float(MAX_ID):
        return MAX_ID
    return int(value) if isinstance(value, float) and value.is_integer() else value


def export_operation() -> Operation:
    """``GET /api/movies/export``: a download in one of three formats, its own 503."""
    content = {
        download.content_type.split(";")[0]: media(
            {"type": "array", "items": schema_ref(bodies.ExportedFilm)}
            if download.content_type == JSON
            else {"type": "string"}
        )
        for download in DOWNLOADS.values()
    }
    ok = Response(
        description="The films, in the format asked for, as a download.",
        headers=response_headers(("Content-Disposition", "Cache-Control")),
        content=content,
    )
    # Its own 503: besides the database or the bridge, the cap on running exports.
    unavailable = error_response(503).model_copy(
        update={
            "description": "The database is down, the server busy, or too many exports are "
            "running on this server (API_EXPORT_MAX_CONCURRENT): refused at once, never "
            "queued; retry after `Retry-After` seconds."
        }
    )
    return Operation(
        operationId="exportMovies",
        summary="Every film the filters select (ndjson, json or csv)",
        description=COMPLETENESS,
        tags=["catalogue"],
        parameters=query_parameters(MovieExportQuery),
        responses={"200": ok, **error_refs((400,)), "503": unavailable},
        security=PUBLIC,
    )


def events_operation() -> Operation:
    """``GET /api/events``: a server-sent event stream, resumable."""
    stream = Response(
        description="A text/event-stream that stays open. Each event has an `id`, an "
        "`event` (`change`, or `reload`: refetch everything) and `data`: a JSON object with "
        "`id`, `kind` (movie, person, genre, credit, all), `op` (create, update, delete, "
        "import) and the ids touched in `movies`, `people` and `genres`. A comment line "
        "every 15 s keeps the stream alive.",
        headers=response_headers(("Cache-Control",)),
        content={"text/event-stream": media(event_schema())},
    )
    last_event_id = header_parameter(
        "Last-Event-ID",
        "Resume after this event: the events missed are sent first if this server still "
        "holds them (its last 1000), else one `reload` event. Opaque: send back the `id` of "
        "an event this API sent; any other value is a 400.",
        {"type": "string", "pattern": EVENT_ID_PATTERN},
    )
    return Operation(
        operationId="streamEvents",
        summary="Committed changes to the catalogue, live (server-sent events)",
        description="PostgreSQL only: on SQLite the answer is 503. Event ids are the same on "
        "every API process, so a client may resume on any of them.",
        tags=["catalogue"],
        parameters=[last_event_id],
        responses={"200": stream, **error_refs((400, 503))},
        security=PUBLIC,
    )


def event_schema() -> dict[str, Any]:
    """One event of the stream as OpenAPI 3.1 reads a text/event-stream schema (each
    event an object of its fields, ``data`` the JSON text of the payload)."""
    ids = {"type": "array", "items": {"type": "integer"}}
    change: dict[str, Any] = {
        "type": "object",
        "required": ["id", "kind", "op", "movies", "people", "genres"],
        "properties": {
            "id": {"type": ["integer", "null"]},
            "kind": {"enum": list(KINDS)},
            "op": {"enum": list(OPS)},
            "movies": ids,
            "people": ids,
            "genres": ids,
        },
    }
    # movies.changes' "all" changes, or aioapi.changefeed.reload_frame's own
    # (a resume this server can no longer replay, a lost listener): with a reason.
    reload = {
        "type": "object",
        "required": ["id", "kind"],
        "properties": {
            **change["properties"],
            "kind": {"const": "all"},
            "reason": {"type": "string"},
        },
    }

    def event(name: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["event", "data"],
            "properties": {
                "event": {"const": name},
                "id": {"type": "string", "pattern": EVENT_ID_PATTERN},
                "data": {
                    "type": "string",
                    "contentMediaType": JSON,
                    "contentSchema": payload,
                },
                "retry": {"type": "integer"},
            },
        }

    return {"oneOf": [event("change", change), event("reload", reload)]}
