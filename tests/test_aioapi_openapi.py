"""The OpenAPI document: valid, complete, and true to what the server answers."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
import pytest
from aiohttp import web
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from aioapi.app import create_app
from movies.models import MAX_ID
from tests.api_fixtures import ApiClient, Catalogue, bearer, json_of

DOC_URI = "urn:mymoviedb:openapi"


async def fetch_document(api: ApiClient) -> dict[str, Any]:
    response = await api.get("/api/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    return await json_of(response)


async def test_document_is_valid_openapi_3_1(api: ApiClient) -> None:
    document = await fetch_document(api)
    assert document["openapi"].startswith("3.1")
    validate(document)
    person = next(
        parameter
        for parameter in document["paths"]["/api/movies"]["get"]["parameters"]
        if parameter["name"] == "person"
    )
    assert person["schema"]["maximum"] == MAX_ID  # exact, not rounded through a float


async def test_every_route_is_documented_and_nothing_else(api: ApiClient) -> None:
    document = await fetch_document(api)
    served = {
        (route.resource.canonical, route.method.lower())
        for route in create_app().router.routes()
        if route.resource is not None
        and not isinstance(route.resource, web.StaticResource)
        and route.method != "HEAD"
    }
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == served


async def test_docs_page_is_served_without_a_cdn(api: ApiClient) -> None:
    page = await api.get("/api/docs")
    assert page.status == 200
    assert page.content_type == "text/html"
    html = await page.text()
    assert '"/api/openapi.json"' in html
    assert "https://" not in html and "http://" not in html
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/api/docs/static/{asset}" in html
        assert (await api.get(f"/api/docs/static/{asset}")).status == 200


@pytest.mark.parametrize("path", ["/api/movies", "/api/movies/export"])
async def test_every_sort_key_is_described(api: ApiClient, path: str) -> None:
    document = await fetch_document(api)
    (sort,) = (p for p in document["paths"][path]["get"]["parameters"] if p["name"] == "sort")
    schema = sort["schema"]
    keys = {key.removeprefix("-") for key in schema.get("enum", ())} or {
        key.removeprefix("-") for option in schema.get("anyOf", ()) for key in option["enum"]
    }
    assert keys >= {"title", "year", "rating", "updated_at", "created_at", "id"}
    description = sort.get("description") or schema.get("description", "")
    assert "descending" in description and "unrated films last" in description
    assert all(f"`{key}`" in description for key in keys), description


def response_schema(document: dict[str, Any], template: str, method: str, status: int) -> Any:
    """The documented schema of one answer, with its $refs left for the validator."""
    responses = document["paths"][template][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {template} does not document {status}"
    response = responses[str(status)]
    if "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response.get("content")


def absolute_refs(node: Any) -> Any:
    """``node`` with its document-relative $refs (``#/components/...``, at any depth:
    the export's array items) pointing into the registered document."""
    if isinstance(node, list):
        return [absolute_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: f"{DOC_URI}{value}" if key == "$ref" else absolute_refs(value)
        for key, value in node.items()
    }


def check(document: dict[str, Any], content: Any, content_type: str, body: bytes) -> None:
    if content is None:
        assert body == b""
        return
    assert content_type in content, f"{content_type} is not documented"
    schema = content[content_type]["schema"]
    if not content_type.endswith("json"):  # the docs page, the metrics
        assert schema == {"type": "string"}
        assert body.decode()
        return
    registry = Registry().with_resource(
        DOC_URI, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    schema = absolute_refs(schema)
    validator = jsonschema.Draft202012Validator(
        schema, registry=registry, format_checker=jsonschema.FormatChecker()
    )
    validator.validate(orjson.loads(body))


READS = [
    ("/api/movies?limit=3", "/api/movies", 200),
    ("/api/movies?sort=-rating&genre=drama", "/api/movies", 200),
    ("/api/movies?limit=0", "/api/movies", 400),
    ("/api/movies/{movie}", "/api/movies/{id}", 200),
    ("/api/movies/999999", "/api/movies/{id}", 404),
    ("/api/movies/export?format=json&genre=drama", "/api/movies/export", 200),
    ("/api/movies/export?format=csv", "/api/movies/export", 200),
    ("/api/movies/export?format=xml", "/api/movies/export", 400),
    ("/api/genres", "/api/genres", 200),
    ("/api/people?limit=2", "/api/people", 200),
    ("/api/people?bogus=1", "/api/people", 400),
    ("/api/people/{person}", "/api/people/{id}", 200),
    ("/api/people/0", "/api/people/{id}", 404),
    ("/api/people/{person}/films?limit=1", "/api/people/{id}/films", 200),
    ("/api/people/{person}/films?cursor=x", "/api/people/{id}/films", 400),
    ("/api/people/0/films", "/api/people/{id}/films", 404),
    ("/api/openapi.json", "/api/openapi.json", 200),
    ("/api/docs", "/api/docs", 200),
    ("/healthz", "/healthz", 200),
    ("/readyz", "/readyz", 200),
    ("/metrics", "/metrics", 200),
]


@pytest.mark.django_db(transaction=True)
async def test_every_documented_get_answer_matches_its_schema(
    api: ApiClient, catalogue: Catalogue
) -> None:
    document = await fetch_document(api)
    ids = {"movie": catalogue.movies["Heat"].pk, "person": catalogue.people["Ridley Scott"].pk}
    for url, template, status in READS:
        response = await api.get(url.format(**ids))
        assert response.status == status, url
        body = await response.read()
        content = response_schema(document, template, "get", status)
        check(document, content, response.content_type, body)
        # Every GET of the API revalidates, except the export: a snapshot, no-store.
        if status == 200 and template.startswith("/api/") and "export" not in template:
            etag = response.headers["ETag"]
            cached = await api.get(url.format(**ids), headers={"If-None-Match": etag})
            assert cached.status == 304
            check(document, response_schema(document, template, "get", 304), "", b"")


@pytest.mark.django_db(transaction=True)
async def test_write_answers_match_their_schemas(
    api: ApiClient, catalogue: Catalogue, writer: tuple[Any, str]
) -> None:
    document = await fetch_document(api)
    film = {"title": "Ronin", "year": 1998, "genres": ["action"]}
    calls: list[tuple[str, str, str, dict[str, Any] | None, dict[str, str]]] = [
        ("post", "/api/movies", "/api/movies", film, bearer(writer[1])),
        ("post", "/api/movies", "/api/movies", film, {}),
        ("post", "/api/movies", "/api/movies", {**film, "genres": ["none"]}, bearer(writer[1])),
        ("post", "/api/movies", "/api/movies", {"year": 1998}, bearer(writer[1])),
        ("patch", "/api/movies/{movie}", "/api/movies/{id}", {"rating": 7.0}, bearer(writer[1])),
        ("patch", "/api/movies/{movie}", "/api/movies/{id}", {"rating": 7.0},
         {**bearer(writer[1]), "If-Match": '"stale"'}),
        ("delete", "/api/movies/{movie}", "/api/movies/{id}", None, bearer(writer[1])),
        ("delete", "/api/movies/{movie}", "/api/movies/{id}", None, bearer(writer[1])),
    ]  # fmt: skip
    movie = catalogue.movies["Heat"].pk
    for method, url, template, body, headers in calls:
        response = await api.request(method, url.format(movie=movie), json=body, headers=headers)
        content = response_schema(document, template, method, response.status)
        check(document, content, response.content_type, await response.read())
