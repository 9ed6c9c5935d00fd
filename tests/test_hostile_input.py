"""Input that still got through (issue 25): numbers that are not the schema's, text
that looks like nothing, posters from anywhere. One rule per kind, the same for
API writes, the importer and the admin's model validation.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.api_fixtures import ApiClient, Catalogue, bearer, json_of

pytestmark = pytest.mark.django_db(transaction=True)


def invalid(*errors: tuple[str, str]) -> dict[str, Any]:
    """The 400 problem of a write body naming ``errors`` (name, reason)."""
    names = ", ".join(dict.fromkeys(name for name, _ in errors))
    return {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": f"Invalid body field(s): {names}.",
        "errors": [{"name": name, "reason": reason} for name, reason in errors],
    }


async def send(api: ApiClient, method: str, path: str, token: str, raw: bytes) -> Any:
    """A write with ``raw`` as its JSON body, byte for byte: (status, payload)."""
    headers = {**bearer(token), "Content-Type": "application/json"}
    response = await api.request(method, path, data=raw, headers=headers)
    return response.status, await json_of(response)


# --- 1. numbers are the numbers the schema says ------------------------------------

NOT_AN_INTEGER = "Input should be a valid integer"


async def test_integers_are_integer_literals(
    api: ApiClient, catalogue: Catalogue, writer: Any
) -> None:
    _, token = writer
    heat = catalogue.movies["Heat"].pk
    pacino = catalogue.people["Al Pacino"].pk
    before = await json_of(await api.get(f"/api/movies/{heat}"))
    for raw, name in [
        (b'{"title": "T", "year": 2000.0}', "year"),
        (b'{"title": "T", "year": 2e3}', "year"),
        (b'{"title": "T", "year": 2E+3}', "year"),
        (b'{"title": "T", "year": "2000"}', "year"),
        (b'{"title": "T", "year": 2000, "runtime_minutes": 90.0}', "runtime_minutes"),
    ]:
        assert await send(api, "POST", "/api/movies", token, raw) == (
            400,
            invalid((name, NOT_AN_INTEGER)),
        ), raw
    for fields, name in [
        ({"credits": [{"person_id": float(pacino)}]}, "credits.0.person_id"),
        ({"credits": [{"person_id": pacino, "billing_order": 1.0}]}, "credits.0.billing_order"),
    ]:
        raw = orjson.dumps(fields)
        assert await send(api, "PATCH", f"/api/movies/{heat}", token, raw) == (
            400,
            invalid((name, NOT_AN_INTEGER)),
        ), raw
    assert await json_of(await api.get(f"/api/movies/{heat}")) == before


async def test_numbers_that_lose_their_value_and_repeated_keys_are_refused(
    api: ApiClient, catalogue: Catalogue, writer: Any
) -> None:
    _, token = writer
    heat = catalogue.movies["Heat"].pk
    pacino = catalogue.people["Al Pacino"].pk
    path = f"/api/movies/{heat}"
    before = await json_of(await api.get(path))
    tiny = "is too small a number: it would be stored as 0"
    cases = [
        (b'{"rating": 1e-400}', [("rating", tiny)]),
        (b'{"rating": 0.00000e-999, "synopsis": "x", "rating": -1.5e-999}',
         [("rating", "given more than once"), ("rating", tiny)]),
        (b'{"title": "A", "title": "B"}', [("title", "given more than once")]),
        (f'{{"credits": [{{"person_id": {pacino}, "role": "cast", "role": "director"}}]}}'.encode(),
         [("credits.0.role", "given more than once")]),
        (b'{"genres": ["drama", "crime", "drama"]}', [("genres", "genre 'drama' is given twice")]),
        (f'{{"credits": [{{"person_id": {pacino}}}, {{"person_id": {pacino}}}]}}'.encode(),
         [("credits", f"person {pacino} is credited twice as cast")]),
    ]  # fmt: skip
    for raw, errors in cases:
        assert await send(api, "PATCH", path, token, raw) == (400, invalid(*errors)), raw
    # Not finite: refused by the field (pydantic) before the JSON check sees it.
    for raw in (b'{"rating": NaN}', b'{"rating": Infinity}', b'{"rating": 1e400}'):
        status, problem = await send(api, "PATCH", path, token, raw)
        assert (status, [error["name"] for error in problem["errors"]]) == (400, ["rating"])
    assert await json_of(await api.get(path)) == before
    # What stays fine: zero written any way, small but representable numbers.
    for raw, rating in [(b'{"rating": 0}', 0.0), (b'{"rating": 0.0e-400}', 0.0),
                        (b'{"rating": 1e-300}', 1e-300), (b'{"rating": 7.5}', 7.5)]:  # fmt: skip
        status, movie = await send(api, "PATCH", path, token, raw)
        assert (status, movie["rating"]) == (200, rating), raw
