"""Hostile headers and auth: CORS answers vary by Origin and plain OPTIONS is
answered, the docs page is locked down (CSP with its inline script's hash, no
framing, nosniff, a charset), and failed tokens never lock out a valid one."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable
from ipaddress import ip_network

import pytest

from aioapi.app import create_app
from aioapi.settings import ApiSettings
from tests.api_fixtures import ApiClient, Catalogue, bearer, json_of, make_token, orm

AppClient = Callable[..., Awaitable[ApiClient]]
ORIGIN = "https://app.example"
FILM = {"title": "Ronin", "year": 1998}


@pytest.fixture
async def cors_api(aiohttp_client: AppClient, api_settings: ApiSettings) -> ApiClient:
    return await aiohttp_client(
        create_app(api_settings.model_copy(update={"cors_origins": (ORIGIN,)}))
    )


def vary_of(headers: object) -> list[str]:
    values = headers.getall("Vary", [])  # type: ignore[attr-defined]
    return [name.strip().lower() for value in values for name in value.split(",")]


# --- CORS --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "origin", [ORIGIN, "https://evil.example", None], ids=["allowed", "stranger", "none"]
)
@pytest.mark.parametrize("path", ["/api/movies", "/api/genres", "/healthz", "/api/openapi.json"])
async def test_every_cors_answer_varies_by_origin(
    cors_api: ApiClient, catalogue: Catalogue, origin: str | None, path: str
) -> None:
    headers = {"Origin": origin} if origin else {}
    response = await cors_api.get(path, headers=headers)
    assert response.status == 200
    assert vary_of(response.headers).count("origin") == 1
    allowed = response.headers.get("Access-Control-Allow-Origin")
    assert allowed == (ORIGIN if origin == ORIGIN else None)


@pytest.mark.django_db(transaction=True)
async def test_vary_origin_is_merged_with_the_vary_already_set(
    cors_api: ApiClient, catalogue: Catalogue
) -> None:
    # The export varies by Accept-Encoding (gzip or not); CORS adds Origin beside it.
    response = await cors_api.get("/api/movies/export", headers={"Origin": ORIGIN})
    assert response.status == 200
    assert vary_of(response.headers) == ["accept-encoding", "origin"]
    await response.read()


async def test_without_cors_nothing_varies_by_origin(api: ApiClient) -> None:
    response = await api.get("/healthz", headers={"Origin": ORIGIN})
    assert "origin" not in vary_of(response.headers)


@pytest.mark.parametrize("headers", [{}, {"Origin": ORIGIN}], ids=["bare", "origin-only"])
async def test_a_plain_options_is_answered_with_allow(
    cors_api: ApiClient, headers: dict[str, str]
) -> None:
    response = await cors_api.options("/api/movies", headers=headers)
    assert response.status == 204
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS, POST"
    assert "origin" in vary_of(response.headers)
    # The same list a 405 on that path gives.
    refused = await cors_api.put("/api/movies", headers=headers)
    assert refused.status == 405
    assert refused.headers["Allow"] == response.headers["Allow"]


async def test_a_preflight_is_still_answered_by_cors(cors_api: ApiClient) -> None:
    preflight = await cors_api.options(
        "/api/movies",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "origin" in vary_of(preflight.headers)
    refused = await cors_api.options(
        "/api/movies",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert refused.status == 403
    assert "Access-Control-Allow-Origin" not in refused.headers


# --- the docs page -------------------------------------------------------------------


async def test_the_docs_page_is_locked_down_to_its_own_assets(api: ApiClient) -> None:
    response = await api.get("/api/docs")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    html = await response.text()
    directives = response.headers["Content-Security-Policy"].split(";")
    policy = dict((part.strip().split(" ", 1) + [""])[:2] for part in directives)
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    # Every inline script is allowed by its hash, computed here from the page as sent.
    inline = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    assert inline, "the page has no inline script: the CSP hash is not exercised"
    hashes = {
        "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"
        for text in inline
    }
    assert policy["script-src"].split() == ["'self'", *sorted(hashes)]
    # Everything else it loads comes from this server, and is there.
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    for asset in assets:
        assert asset.startswith("/api/docs/static/"), asset
        assert (await api.get(asset)).status == 200, asset


async def test_a_revalidated_docs_page_keeps_its_headers(api: ApiClient) -> None:
    first = await api.get("/api/docs")
    again = await api.get("/api/docs", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304
    assert again.headers["Content-Security-Policy"] == first.headers["Content-Security-Policy"]


async def test_the_document_is_nosniff(api: ApiClient) -> None:
    response = await api.get("/api/openapi.json")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# --- failed authentications never lock out a valid token ------------------------------


@pytest.fixture
async def proxied(aiohttp_client: AppClient, api_settings: ApiSettings) -> ApiClient:
    """Behind a proxy: X-Forwarded-For says which client each request is."""
    settings = api_settings.model_copy(update={"trusted_proxies": (ip_network("127.0.0.1/32"),)})
    return await aiohttp_client(create_app(settings))


NAT = "203.0.113.9"
TOO_MANY = {
    "type": "about:blank",
    "title": "Too Many Requests",
    "status": 429,
    "detail": "Too many failed authentications; try again later.",
}


def from_nat(authorization: str) -> dict[str, str]:
    return {"X-Forwarded-For": NAT, "Authorization": authorization}


@pytest.mark.django_db(transaction=True)
async def test_bad_tokens_from_an_address_never_lock_out_its_valid_tokens(
    proxied: ApiClient, api_settings: ApiSettings, catalogue: Catalogue
) -> None:
    _, good = await orm(make_token, "add_movie")
    _, revoked_by_a_script = await orm(make_token, "add_movie")
    prefix, secret = revoked_by_a_script.split(".")
    # One character of the secret changed (to one it is not: a random secret may start with x).
    stale = f"{prefix}.{'y' if secret[0] == 'x' else 'x'}{secret[1:]}"
    limit = api_settings.auth_failures_per_minute
    for _ in range(limit):
        response = await proxied.post("/api/movies", json=FILM, headers=from_nat(f"Bearer {stale}"))
        assert response.status == 401
    # Limited: bad tokens (that one, another, none at all) are 429 ...
    for header in (f"Bearer {stale}", "Bearer 0123abcd." + "y" * 43, "Bearer a b"):
        blocked = await proxied.post("/api/movies", json=FILM, headers=from_nat(header))
        assert blocked.status == 429, header
        assert 1 <= int(blocked.headers["Retry-After"]) <= 60
        assert await json_of(blocked) == TOO_MANY
    # ... but a colleague's valid token behind the same address is accepted, every time.
    for _ in range(3):
        accepted = await proxied.post("/api/movies", json=FILM, headers=from_nat(f"Bearer {good}"))
        assert accepted.status == 201
        bad = await proxied.post(
            "/api/movies", json=FILM, headers=from_nat("Bearer fedcba98." + "z" * 43)
        )
        assert bad.status == 429


@pytest.mark.django_db(transaction=True)
async def test_a_guesser_tests_one_token_no_faster_than_the_limit(
    proxied: ApiClient, api_settings: ApiSettings, catalogue: Catalogue
) -> None:
    _, target = await orm(make_token, "add_movie")
    prefix = target.split(".")[0]
    limit = api_settings.auth_failures_per_minute
    guesses = [f"Bearer {prefix}.{index:043d}" for index in range(limit + 3)]
    statuses = [
        (await proxied.post("/api/movies", json=FILM, headers=from_nat(guess))).status
        for guess in guesses
    ]
    assert statuses == [401] * limit + [429] * 3
    # Past its tries at that token the address gets no answer about it, even for the
    # right secret: otherwise each request past the limit would still test a guess.
    right = await proxied.post("/api/movies", json=FILM, headers=from_nat(f"Bearer {target}"))
    assert right.status == 429
    # Another address is not limited by it.
    elsewhere = {"X-Forwarded-For": "198.51.100.7", **bearer(target)}
    assert (await proxied.post("/api/movies", json=FILM, headers=elsewhere)).status == 201
