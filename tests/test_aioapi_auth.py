"""Bearer tokens on API writes: 401, 403, revocation, and the failed-auth limit (429)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from ipaddress import ip_network
from typing import Any

import pytest
from django.contrib.auth.models import User

from aioapi.app import create_app
from aioapi.ratelimit import FailedAuthLimiter
from aioapi.settings import ApiSettings
from movies.models import ApiToken, AuthFailure, Movie
from movies.tokens import revoke_token
from tests.api_fixtures import ApiClient, Catalogue, bearer, json_of, make_token, orm

pytestmark = pytest.mark.django_db(transaction=True)

FILM = {"title": "Ronin", "year": 1998}


def problem(status: int, title: str, detail: str) -> dict[str, Any]:
    return {"type": "about:blank", "title": title, "status": status, "detail": detail}


async def test_anonymous_write_is_401_with_a_challenge(
    api: ApiClient, catalogue: Catalogue
) -> None:
    movie = catalogue.movies["Alien"].pk
    for method, url in [("POST", "/api/movies"), ("PATCH", f"/api/movies/{movie}"),
                        ("DELETE", f"/api/movies/{movie}")]:  # fmt: skip
        response = await api.request(method, url, json=FILM)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="mymoviedb"'
        assert await json_of(response) == problem(
            401, "Unauthorized", "Authentication required: send Authorization: Bearer <token>."
        )
    assert await orm(Movie.objects.count) == len(catalogue.movies)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer 0123abcd.not-a-real-token-but-shaped-like-one-xxxxxxxxxxxxxxx",
        "Bearer nonsense",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer a b",
    ],
)
async def test_invalid_token_is_401(api: ApiClient, catalogue: Catalogue, header: str) -> None:
    response = await api.post("/api/movies", json=FILM, headers={"Authorization": header})
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="mymoviedb", error="invalid_token"'
    )
    assert await json_of(response) == problem(
        401, "Unauthorized", "The token is invalid or revoked."
    )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/movies", {}),  # missing fields: a 400 for a valid token
        ("PATCH", "/api/movies/{heat}", {"rating": "high"}),
        ("PATCH", "/api/movies/999999999", {"rating": 7.0}),  # a 404 for a valid token
        ("DELETE", "/api/movies/0", None),
    ],
)
async def test_an_invalid_token_is_refused_before_the_request_itself(
    api: ApiClient, catalogue: Catalogue, method: str, path: str, body: Any
) -> None:
    # Writes verify the token in their own hop, after the checks that need no query;
    # a refusal of those still waits for the token's verdict, which is counted.
    url = path.format(heat=catalogue.movies["Heat"].pk)
    wrong = {"Authorization": "Bearer wrong"}
    # What a failure records, measured with a request the API would accept.
    assert (await api.post("/api/movies", json=FILM, headers=wrong)).status == 401
    per_failure = await orm(AuthFailure.objects.count)
    response = await api.request(method, url, json=body, headers=wrong)
    assert response.status == 401, await response.text()
    assert await orm(AuthFailure.objects.count) == 2 * per_failure
    _, raw = await orm(make_token, f"{method_codename(method)}_movie")
    refused = await api.request(method, url, json=body, headers=bearer(raw))
    assert refused.status in (400, 404), await refused.text()


def method_codename(method: str) -> str:
    return {"POST": "add", "PATCH": "change", "DELETE": "delete"}[method]


async def test_revoked_token_and_inactive_user_are_refused(
    api: ApiClient, catalogue: Catalogue
) -> None:
    user, raw = await orm(make_token, "add_movie")
    assert (await api.post("/api/movies", json=FILM, headers=bearer(raw))).status == 201
    await orm(lambda: revoke_token(ApiToken.objects.get(user=user)))
    assert (await api.post("/api/movies", json=FILM, headers=bearer(raw))).status == 401

    other, raw_other = await orm(make_token, "add_movie")
    await orm(lambda: User.objects.filter(pk=other.pk).update(is_active=False))
    assert (await api.post("/api/movies", json=FILM, headers=bearer(raw_other))).status == 401


@pytest.mark.parametrize(
    ("codename", "method", "needed"),
    [
        ("change_movie", "POST", "movies.add_movie"),
        ("add_movie", "PATCH", "movies.change_movie"),
        ("change_movie", "DELETE", "movies.delete_movie"),
    ],
)
async def test_missing_permission_is_403(
    api: ApiClient, catalogue: Catalogue, codename: str, method: str, needed: str
) -> None:
    _, raw = await orm(make_token, codename)
    url = "/api/movies" if method == "POST" else f"/api/movies/{catalogue.movies['Heat'].pk}"
    response = await api.request(method, url, json=FILM, headers=bearer(raw))
    assert response.status == 403
    assert await json_of(response) == problem(
        403, "Forbidden", f"The token's user lacks the permission {needed}."
    )
    assert await orm(Movie.objects.filter(title="Ronin").exists) is False


async def test_repeated_failures_are_rate_limited_per_client(
    aiohttp_client: Callable[..., Awaitable[ApiClient]],
    api_settings: ApiSettings,
    catalogue: Catalogue,
) -> None:
    settings = api_settings.model_copy(update={"trusted_proxies": (ip_network("127.0.0.1/32"),)})
    api = await aiohttp_client(create_app(settings))
    _, good = await orm(make_token, "add_movie")
    attacker = {"X-Forwarded-For": "203.0.113.9", "Authorization": "Bearer wrong"}
    for _ in range(settings.auth_failures_per_minute):
        assert (await api.post("/api/movies", json=FILM, headers=attacker)).status == 401
    blocked = await api.post("/api/movies", json=FILM, headers=attacker)
    assert blocked.status == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    assert await json_of(blocked) == problem(
        429, "Too Many Requests", "Too many failed authentications; try again later."
    )
    # A good token from the same address is still checked and accepted (curators
    # share addresses behind a NAT: tests/test_hostile_headers.py); so from another.
    same_client = {"X-Forwarded-For": "203.0.113.9", **bearer(good)}
    assert (await api.post("/api/movies", json=FILM, headers=same_client)).status == 201
    other_client = {"X-Forwarded-For": "198.51.100.7", **bearer(good)}
    assert (await api.post("/api/movies", json=FILM, headers=other_client)).status == 201


def test_limiter_window_slides() -> None:
    now = [1000.0]
    limiter = FailedAuthLimiter(3, window=60.0, clock=lambda: now[0])
    for step in range(3):
        assert limiter.retry_after("a") is None
        limiter.failed("a")
        now[0] += 10 * step
    # Failures at 1000, 1000 and 1010, now 1030: blocked until 1060, when the first
    # two leave the window.
    assert limiter.retry_after("a") == 30
    assert limiter.retry_after("b") is None
    now[0] = 1060.5
    assert limiter.retry_after("a") is None


def test_limiter_deletes_failures_past_the_window() -> None:
    now = [1000.0]
    limiter = FailedAuthLimiter(1, clock=lambda: now[0])
    limiter.failed("a", "tok1")
    assert limiter.retry_after("a") == 60
    assert limiter.token_retry_after("a", "tok1") == 60
    assert limiter.token_retry_after("a", "tok2") is None
    now[0] = 1061.0
    limiter.failed("c")
    assert sorted(AuthFailure.objects.values_list("key", "at")) == [("c", 1061.0)]
