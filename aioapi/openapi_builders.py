"""Building blocks of the OpenAPI document: operations, parameters, responses.

Kept apart from the document itself (aioapi.openapi) so that the paths table
there reads as a list of endpoints.
"""

from __future__ import annotations

from typing import Any

from openapi_pydantic import (
    MediaType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Response,
    Schema,
    SecurityScheme,
)
from openapi_pydantic.util import PydanticSchema
from pydantic import BaseModel

from aioapi import openapi_models as bodies
from aioapi.consistency import TOKEN_HEADER
from movies.fields import SLUG_MAX_LENGTH, SLUG_PATTERN
from movies.models import MAX_ID
from movies.problems import PROBLEM_CONTENT_TYPE

JSON = "application/json"
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
# Said explicitly on every operation that needs no token: generated clients then
# offer it without credentials.
PUBLIC: list[dict[str, list[str]]] = []

# Error responses by status: (component name, description, extra headers).
ERRORS: dict[int, tuple[str, str, tuple[str, ...]]] = {
    400: ("BadRequest", "A parameter or body field is invalid; `errors` names each.", ()),
    401: ("Unauthorized", "No valid bearer token.", ("WWW-Authenticate",)),
    403: ("Forbidden", "The token's user lacks the permission.", ()),
    404: ("NotFound", "No such resource.", ()),
    412: ("PreconditionFailed", "If-Match does not match the current ETag.", ()),
    413: ("ContentTooLarge", "The body exceeds the size limit.", ()),
    415: ("UnsupportedMediaType", "The body is not application/json.", ()),
    422: ("UnprocessableContent", "Unknown genres or people; `errors` names each.", ()),
    429: ("TooManyRequests", "Too many failed authentications.", ("Retry-After",)),
    503: ("ServiceUnavailable", "The database is down or the server busy.", ("Retry-After",)),
}
HEADERS: dict[str, str] = {
    "ETag": "Strong validator of the body; send it as If-None-Match or If-Match.",
    "Cache-Control": "Caching policy (API_CACHE_CONTROL).",
    "Location": "URL of the created film.",
    "Retry-After": "Seconds to wait before retrying.",
    "WWW-Authenticate": "The Bearer challenge.",
    "Content-Disposition": "attachment, with a file name.",
    TOKEN_HEADER: "Sent when the API reads from replicas: the primary's WAL position after "
    "this write. Send it back on later reads to see this write (read-your-writes).",
}
READ_ERRORS = (400, 503)
WRITE_ERRORS = (400, 401, 403, 413, 415, 422, 429, 503)


def bearer_scheme() -> SecurityScheme:
    return SecurityScheme.model_validate(
        {"type": "http", "scheme": "bearer", "description": "A token issued in the admin."}
    )


def read(
    operation_id: str,
    summary: str,
    model: type[BaseModel] | type[Any] | None,
    *,
    parameters: list[Parameter | Reference] | None = None,
    errors: tuple[int, ...] = READ_ERRORS,
    description: str | None = None,
    tag: str = "catalogue",
    media_type: str = JSON,
) -> Operation:
    conditional = [
        header_parameter("If-None-Match", "ETags the client already holds."),
        header_parameter(
            TOKEN_HEADER,
            "A write's token: the answer is read no earlier than that write (from a replica "
            "that has replayed it, or the primary). Anything else: the primary answers.",
        ),
    ]
    # A shape of movies.shapes (a TypedDict) is documented as its model.
    if model is not None and not issubclass(model, BaseModel):
        model = bodies.documented(model)
    responses: dict[str, Response | Reference] = {
        "200": _body_response(summary, model, ("ETag", "Cache-Control"), media_type),
        "304": Response(description="Not modified: If-None-Match holds the current ETag.",
                        headers=response_headers(("ETag", "Cache-Control"))),
        **error_refs(errors),
    }  # fmt: skip
    return Operation(
        operationId=operation_id,
        summary=summary,
        description=description,
        tags=[tag],
        parameters=[*(parameters or []), *conditional],
        responses=responses,
        security=PUBLIC,
    )


def write(
    operation_id: str,
    summary: str,
    *,
    ok: tuple[int, type[BaseModel] | None],
    errors: tuple[int, ...],
    body: type[BaseModel] | None = None,
    parameters: list[Parameter | Reference] | None = None,
) -> Operation:
    status, model = ok
    headers = ("ETag", "Location", TOKEN_HEADER) if status == 201 else ("ETag", TOKEN_HEADER)
    success = (
        _body_response(summary, model, headers, JSON)
        if model is not None
        else Response(description="Deleted.", headers=response_headers((TOKEN_HEADER,)))
    )
    request_body = None
    if body is not None:
        request_body = RequestBody(required=True, content={JSON: media(schema_ref(body))})
    return Operation(
        operationId=operation_id,
        summary=summary,
        tags=["catalogue"],
        parameters=parameters,
        requestBody=request_body,
        responses={str(status): success, **error_refs(errors)},
        security=BEARER,
    )


def probe(
    operation_id: str, summary: str, errors: tuple[int, ...] = (), *, media_type: str = JSON
) -> Operation:
    model = bodies.Status if media_type == JSON else None
    return Operation(
        operationId=operation_id,
        summary=summary,
        tags=["operations"],
        responses={"200": _body_response(summary, model, (), media_type), **error_refs(errors)},
        security=PUBLIC,
    )


def _body_response(
    description: str, model: type[BaseModel] | None, headers: tuple[str, ...], media_type: str
) -> Response:
    if model is not None:
        schema: Schema | dict[str, str] = schema_ref(model)
    else:
        schema = {"type": "object" if media_type == JSON else "string"}
    content = {media_type: media(schema)}
    return Response(
        description=description, headers=response_headers(headers) or None, content=content
    )


def error_response(status: int) -> Response:
    _, description, headers = ERRORS[status]
    return Response(
        description=description,
        headers=response_headers(headers) or None,
        content={PROBLEM_CONTENT_TYPE: media(schema_ref(bodies.ProblemDetails))},
    )


def error_refs(statuses: tuple[int, ...]) -> dict[str, Response | Reference]:
    refs: dict[str, Response | Reference] = {}
    for status in statuses:
        ref = f"#/components/responses/{ERRORS[status][0]}"
        refs[str(status)] = Reference.model_validate({"$ref": ref})
    refs["500"] = _error_500()
    return refs


def _error_500() -> Response:
    return Response(
        description="Unexpected error (logged; no details are given).",
        content={PROBLEM_CONTENT_TYPE: media(schema_ref(bodies.ProblemDetails))},
    )


def schema_ref(model: type[BaseModel]) -> Schema:
    # Replaced by a $ref to components/schemas by construct_open_api_with_schema_class.
    return PydanticSchema[BaseModel].model_validate({"schema_class": model})


def media(schema: Schema | dict[str, Any]) -> MediaType:
    return MediaType.model_validate({"schema": schema})


def response_headers(names: tuple[str, ...]) -> dict[str, Any]:
    return {name: {"description": HEADERS[name], "schema": {"type": "string"}} for name in names}


def path_id(description: str) -> Parameter:
    schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    description += " In plain digits: `036249` or `+1` names nothing (404)."
    return path_parameter("id", description, schema)


def path_slug(description: str) -> Parameter:
    """A ``{slug}`` path variable (movies.parsing.parse_slug reads it)."""
    schema = {"type": "string", "pattern": SLUG_PATTERN, "maxLength": SLUG_MAX_LENGTH}
    return path_parameter("slug", description, schema)


def path_parameter(name: str, description: str, schema: dict[str, Any]) -> Parameter:
    return Parameter.model_validate(
        {"name": name, "in": "path", "required": True, "description": description,
         "schema": schema}
    )  # fmt: skip


def header_parameter(
    name: str, description: str, schema: dict[str, Any] | None = None
) -> Parameter:
    return Parameter.model_validate(
        {"name": name, "in": "header", "description": description,
         "schema": schema or {"type": "string"}}
    )  # fmt: skip


def if_match() -> Parameter:
    return header_parameter(
        "If-Match", "The ETag last read (its W/ form too): the write fails (412) if stale."
    )


def query_parameters(model: type[BaseModel]) -> list[Parameter | Reference]:
    """One query parameter per field of ``model``, described by its JSON schema."""
    schema = model.model_json_schema()
    parameters: list[Parameter | Reference] = []
    for name, field in schema["properties"].items():
        field = dict(field)
        description = field.pop("description", None)
        field.pop("title", None)
        # A query parameter is absent or a string, never JSON null.
        options = [option for option in field.pop("anyOf", []) if option != {"type": "null"}]
        if len(options) == 1:
            field.update(options[0])
        if field.get("default") is None:
            field.pop("default", None)
        parameters.append(
            Parameter.model_validate(
                {"name": name, "in": "query", "description": description, "schema": field}
            )
        )
    return parameters
