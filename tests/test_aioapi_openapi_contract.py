"""What client generators need from the OpenAPI document: typed export
items, named enum members, public operations marked public, a server, a licence,
and server-sent events that match their documented schema."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
import pytest
from django.test import override_settings

from aioapi.changefeed import change_frame, reload_frame
from aioapi.openapi import build_openapi
from aioapi.routes import ROUTES
from movies.changes import Change


def document() -> dict[str, Any]:
    return build_openapi(ROUTES)


def operations(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {op["operationId"]: op for item in doc["paths"].values() for op in item.values()}


def test_the_json_export_declares_its_items() -> None:
    doc = document()
    ok = operations(doc)["exportMovies"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"] == {"type": "array", "items": {"$ref": "#/components/schemas/ExportedFilm"}}
    film = doc["components"]["schemas"]["ExportedFilm"]
    assert list(film["properties"]) == [
        "id", "title", "year", "release_date", "runtime_minutes", "rating", "genres",
    ]  # fmt: skip


def test_sort_values_have_names() -> None:
    sort = next(
        parameter["schema"]
        for parameter in operations(document())["listMovies"]["parameters"]
        if parameter["name"] == "sort"
    )
    names = dict(zip(sort["enum"], sort["x-enum-varnames"], strict=True))
    assert names["-title"] == "TITLE_DESC" and names["title"] == "TITLE"
    assert names["-updated_at"] == "UPDATED_AT_DESC"
    assert len(set(names.values())) == len(names)


def test_every_operation_says_whether_it_needs_a_token() -> None:
    for operation_id, operation in operations(document()).items():
        writes = operation_id in {"createMovie", "updateMovie", "deleteMovie"}
        assert operation["security"] == ([{"bearerAuth": []}] if writes else []), operation_id


def test_servers_and_licence() -> None:
    assert document()["servers"] == [{"url": "/"}]
    with override_settings(API_PUBLIC_URL="https://api.example.org"):
        assert document()["servers"] == [{"url": "https://api.example.org"}]
    assert document()["info"]["license"] == {"name": "MIT", "identifier": "MIT"}


def parse_event(frame: bytes) -> dict[str, Any]:
    """One frame as OpenAPI 3.1 tools read an event: its fields, ``data`` as text."""
    event: dict[str, Any] = {}
    for line in frame.decode().strip("\n").split("\n"):
        name, _, value = line.partition(": ")
        event[name] = value
    return event


@pytest.mark.parametrize(
    "frame",
    [
        change_frame(Change("movie", "update", movies=(3,), id=7)),
        change_frame(Change("all", "import", id=8)),
        reload_frame("the events after 3 are no longer held", 9),
        reload_frame("the change feed's listener reconnected", None),
    ],
    ids=["change", "import-all", "reload-resume", "reload-no-id"],
)
def test_every_kind_of_event_matches_the_documented_schema(frame: bytes) -> None:
    content = operations(document())["streamEvents"]["responses"]["200"]["content"]
    schema = content["text/event-stream"]["schema"]
    event = parse_event(frame)
    jsonschema.Draft202012Validator(schema).validate(event)
    # contentSchema is an annotation: the data's JSON is checked against it here.
    (branch,) = [
        one for one in schema["oneOf"] if one["properties"]["event"]["const"] == event["event"]
    ]
    payload = branch["properties"]["data"]["contentSchema"]
    jsonschema.Draft202012Validator(payload).validate(orjson.loads(event["data"]))
