"""The app factory's options: settings from the environment, CORS, the JSON access log."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson
import pytest
from django.core.exceptions import ImproperlyConfigured

from aioapi.app import create_app
from aioapi.settings import ApiSettings
from tests.api_fixtures import ApiClient, json_of

AppClient = Callable[..., Awaitable[ApiClient]]
ORIGIN = "https://app.example"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_DB_THREADS", "12")
    monkeypatch.setenv("API_DB_MAX_PENDING", "100")
    monkeypatch.setenv("API_MAX_BODY_BYTES", "4096")
    monkeypatch.setenv("API_CORS_ORIGINS", f"{ORIGIN},https://other.example")
    monkeypatch.setenv("API_ACCESS_LOG", "json")
    monkeypatch.setenv("API_AUTH_FAILURES_PER_MINUTE", "3")
    monkeypatch.setenv("API_SHUTDOWN_TIMEOUT_SECONDS", "7.5")
    settings = ApiSettings.from_env()
    assert (settings.db_threads, settings.db_max_pending, settings.max_body_bytes) == (
        12,
        100,
        4096,
    )
    assert settings.cors_origins == (ORIGIN, "https://other.example")
    assert (settings.access_log, settings.auth_failures_per_minute) == ("json", 3)
    assert settings.shutdown_timeout_seconds == 7.5


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("API_DB_THREADS", "many", "API_DB_THREADS='many': Input should be a valid integer"),
        ("API_ACCESS_LOG", "xml", "API_ACCESS_LOG='xml': Input should be 'off', 'text' or 'json'"),
        ("API_DB_MAX_PENDING", "2", "API_DB_MAX_PENDING must be >= API_DB_THREADS"),
        ("API_MAX_BODY_BYTES", "0", "API_MAX_BODY_BYTES='0': Input should be greater than 0"),
        ("API_TRUSTED_PROXIES", "10.0.0.1,nginx", "API_TRUSTED_PROXIES='nginx': "),
        ("API_TRUST_X_FORWARDED_FOR", "1", "API_TRUST_X_FORWARDED_FOR is replaced by API_TRUSTED"),
    ],
)
def test_bad_settings_stop_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=message.replace("(", r"\(")):
        ApiSettings.from_env()


async def test_cors_answers_preflights_for_configured_origins(
    aiohttp_client: AppClient, api_settings: ApiSettings
) -> None:
    api = await aiohttp_client(
        create_app(api_settings.model_copy(update={"cors_origins": (ORIGIN,)}))
    )
    preflight = await api.options(
        "/api/movies",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert preflight.status == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    allowed = preflight.headers["Access-Control-Allow-Headers"].upper()
    assert "AUTHORIZATION" in allowed and "CONTENT-TYPE" in allowed

    health = await api.get("/healthz", headers={"Origin": ORIGIN})
    assert health.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "ETAG" in health.headers["Access-Control-Expose-Headers"].upper()
    stranger = await api.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in stranger.headers


async def test_cors_is_off_without_origins(api: ApiClient) -> None:
    response = await api.options("/api/movies", headers={"Origin": ORIGIN})
    assert response.status == 405
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_json_access_log_writes_one_object_per_request(
    aiohttp_client: AppClient, api_settings: ApiSettings, caplog: pytest.LogCaptureFixture
) -> None:
    api = await aiohttp_client(create_app(api_settings.model_copy(update={"access_log": "json"})))
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        response = await api.get("/healthz?probe=1", headers={"User-Agent": "tests"})
        assert await json_of(response) == {"status": "ok"}
    records = [r for r in caplog.records if r.name == "aiohttp.access"]
    assert len(records) == 1
    entry = orjson.loads(records[0].getMessage())
    assert entry.keys() == {
        "time", "client", "peer", "forwarded_for", "method", "path", "query", "status",
        "bytes_sent", "duration_ms", "user_agent",
    }  # fmt: skip
    assert (entry["method"], entry["path"], entry["query"]) == ("GET", "/healthz", "probe=1")
    assert (entry["status"], entry["user_agent"]) == (200, "tests")
    assert (entry["client"], entry["peer"], entry["forwarded_for"]) == (
        "127.0.0.1",
        "127.0.0.1",
        None,
    )
    assert entry["bytes_sent"] > len(b'{"status":"ok"}')  # the headers count too
    assert entry["duration_ms"] >= 0
