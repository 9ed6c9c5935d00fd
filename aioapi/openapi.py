"""The OpenAPI 3.1 document of the API, built with openapi-pydantic.

Parameters and request bodies come from the very pydantic classes that validate
them (movies.schemas); response bodies from aioapi.openapi_models. Every error
status an operation can answer is listed, with the problem shape.
"""

from __future__ import annotations

from typing import Any

from openapi_pydantic import (
    Components,
    Info,
    MediaType,
    OpenAPI,
    Operation,
    Parameter,
    PathItem,
    Reference,
    RequestBody,
    Response,
    Schema,
    SecurityScheme,
)
from openapi_pydantic.util import PydanticSchema, construct_open_api_with_schema_class
from pydantic import BaseModel

from aioapi import openapi_models as bodies
from movies.problems import PROBLEM_CONTENT_TYPE
from movies.schemas import MAX_ID, MovieCreate, MovieFields, MovieListQuery, PeopleListQuery

API_VERSION = "1.0.0"
JSON = "application/json"
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]

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
}
READ_ERRORS = (400, 503)
WRITE_ERRORS = (400, 401, 403, 413, 415, 422, 429, 503)


def build_openapi() -> dict[str, Any]:
    """The whole document as a JSON-ready dict."""
    movie_id = _path_id("Film id.")
    person_id = _path_id("Person id.")
    paths = {
        "/api/movies": PathItem(
            get=_read("listMovies", "Films, filtered, sorted and paginated", bodies.MovieList,
                      parameters=_query(MovieListQuery),
                      description="`year_min` may not exceed `year_max`; `cursor` (from a "
                      "`next`/`previous` link) and `offset` exclude each other."),
            post=_write("createMovie", "Add a film (permission movies.add_movie)",
                        body=MovieCreate, ok=(201, bodies.MovieDetail), errors=WRITE_ERRORS),
        ),
        "/api/movies/{id}": PathItem(
            get=_read("getMovie", "A film with genres, directors and cast", bodies.MovieDetail,
                      parameters=[movie_id], errors=(404, 503)),
            patch=_write("updateMovie", "Change a film (permission movies.change_movie)",
                         parameters=[movie_id, _if_match()], body=MovieFields,
                         ok=(200, bodies.MovieDetail), errors=(*WRITE_ERRORS, 404, 412)),
            delete=_write("deleteMovie", "Delete a film (permission movies.delete_movie)",
                          parameters=[movie_id, _if_match()], ok=(204, None),
                          errors=(401, 403, 404, 412, 429, 503)),
        ),
        "/api/genres": PathItem(
            get=_read("listGenres", "Every genre with its number of films", bodies.GenreList,
                      errors=(503,)),
        ),
        "/api/people": PathItem(
            get=_read("listPeople", "People by name", bodies.PeopleList,
                      parameters=_query(PeopleListQuery)),
        ),
        "/api/people/{id}": PathItem(
            get=_read("getPerson", "A person with their filmography", bodies.PersonDetail,
                      parameters=[person_id], errors=(404, 503)),
        ),
        "/api/openapi.json": PathItem(
            get=_read("getOpenApi", "This document", None, errors=(), tag="meta"),
        ),
        "/api/docs": PathItem(
            get=_read("getDocs", "Interactive documentation (HTML)", None, errors=(),
                      tag="meta", media_type="text/html"),
        ),
        "/healthz": PathItem(get=_probe("healthz", "Liveness: the process answers")),
        "/readyz": PathItem(get=_probe("readyz", "Readiness: the database answers", (503,))),
        "/metrics": PathItem(get=_probe("metrics", "Prometheus metrics", media_type="text/plain")),
    }  # fmt: skip
    document = OpenAPI(
        openapi="3.1.0",
        info=Info(
            title="mymoviedb API",
            version=API_VERSION,
            description="The public film catalogue. Errors are RFC 9457 problem details.",
        ),
        paths=paths,
        components=Components(
            responses={name: _error(status) for status, (name, _, _) in ERRORS.items()},
            securitySchemes={"bearerAuth": _bearer_scheme()},
        ),
    )
    document = construct_open_api_with_schema_class(
        document, schema_classes=[bodies.ProblemDetails]
    )
    # exclude_unset: openapi-pydantic's own defaults (allowEmptyValue on a header
    # parameter, ...) are not all valid where they would land.
    return document.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)


def _bearer_scheme() -> SecurityScheme:
    return SecurityScheme.model_validate(
        {"type": "http", "scheme": "bearer", "description": "A token issued in the admin."}
    )


def _read(
    operation_id: str,
    summary: str,
    model: type[BaseModel] | None,
    *,
    parameters: list[Parameter | Reference] | None = None,
    errors: tuple[int, ...] = READ_ERRORS,
    description: str | None = None,
    tag: str = "catalogue",
    media_type: str = JSON,
) -> Operation:
    conditional = [_header_parameter("If-None-Match", "ETags the client already holds.")]
    responses: dict[str, Response | Reference] = {
        "200": _body_response(summary, model, ("ETag", "Cache-Control"), media_type),
        "304": Response(description="Not modified: If-None-Match holds the current ETag.",
                        headers=_headers(("ETag", "Cache-Control"))),
        **_error_refs(errors),
    }  # fmt: skip
    return Operation(
        operationId=operation_id,
        summary=summary,
        description=description,
        tags=[tag],
        parameters=[*(parameters or []), *conditional],
        responses=responses,
    )


def _write(
    operation_id: str,
    summary: str,
    *,
    ok: tuple[int, type[BaseModel] | None],
    errors: tuple[int, ...],
    body: type[BaseModel] | None = None,
    parameters: list[Parameter | Reference] | None = None,
) -> Operation:
    status, model = ok
    headers = ("ETag", "Location") if status == 201 else ("ETag",)
    success = (
        _body_response(summary, model, headers, JSON)
        if model is not None
        else Response(description="Deleted.")
    )
    request_body = None
    if body is not None:
        request_body = RequestBody(required=True, content={JSON: _media(_schema(body))})
    return Operation(
        operationId=operation_id,
        summary=summary,
        tags=["catalogue"],
        parameters=parameters,
        requestBody=request_body,
        responses={str(status): success, **_error_refs(errors)},
        security=BEARER,
    )


def _probe(
    operation_id: str, summary: str, errors: tuple[int, ...] = (), *, media_type: str = JSON
) -> Operation:
    model = bodies.Status if media_type == JSON else None
    return Operation(
        operationId=operation_id,
        summary=summary,
        tags=["operations"],
        responses={"200": _body_response(summary, model, (), media_type), **_error_refs(errors)},
    )


def _body_response(
    description: str, model: type[BaseModel] | None, headers: tuple[str, ...], media_type: str
) -> Response:
    if model is not None:
        schema: Schema | dict[str, str] = _schema(model)
    else:
        schema = {"type": "object" if media_type == JSON else "string"}
    content = {media_type: _media(schema)}
    return Response(description=description, headers=_headers(headers) or None, content=content)


def _error(status: int) -> Response:
    _, description, headers = ERRORS[status]
    return Response(
        description=description,
        headers=_headers(headers) or None,
        content={PROBLEM_CONTENT_TYPE: _media(_schema(bodies.ProblemDetails))},
    )


def _error_refs(statuses: tuple[int, ...]) -> dict[str, Response | Reference]:
    refs: dict[str, Response | Reference] = {}
    for status in statuses:
        ref = f"#/components/responses/{ERRORS[status][0]}"
        refs[str(status)] = Reference.model_validate({"$ref": ref})
    refs["500"] = _error_500()
    return refs


def _error_500() -> Response:
    return Response(
        description="Unexpected error (logged; no details are given).",
        content={PROBLEM_CONTENT_TYPE: _media(_schema(bodies.ProblemDetails))},
    )


def _schema(model: type[BaseModel]) -> Schema:
    # Replaced by a $ref to components/schemas by construct_open_api_with_schema_class.
    return PydanticSchema[BaseModel].model_validate({"schema_class": model})


def _media(schema: Schema | dict[str, str]) -> MediaType:
    return MediaType.model_validate({"schema": schema})


def _headers(names: tuple[str, ...]) -> dict[str, Any]:
    return {name: {"description": HEADERS[name], "schema": {"type": "string"}} for name in names}


def _path_id(description: str) -> Parameter:
    schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    return Parameter.model_validate(
        {"name": "id", "in": "path", "required": True, "description": description,
         "schema": schema}
    )  # fmt: skip


def _header_parameter(name: str, description: str) -> Parameter:
    return Parameter.model_validate(
        {"name": name, "in": "header", "description": description, "schema": {"type": "string"}}
    )


def _if_match() -> Parameter:
    return _header_parameter("If-Match", "The ETag last read: the write fails (412) if stale.")


def _query(model: type[BaseModel]) -> list[Parameter | Reference]:
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
