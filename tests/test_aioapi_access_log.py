"""aioapi/access_log.py: the client and the peer told apart, every field escaped.

A client writes ``X-Forwarded-For``: with a quote, a backslash or a control
character in it, a raw log line could be made to show forged fields or a forged
request. Each test serves a real request through aiohttp's test server, with the
access log format Gunicorn uses in deploy/gunicorn_api.conf.py.
"""

from __future__ import annotations

import logging
import re
import runpy
from collections.abc import Awaitable, Callable
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestServer

from aioapi.app import create_app
from aioapi.settings import ApiSettings

REPO = Path(__file__).resolve().parent.parent
DEPLOY_FORMAT = runpy.run_path(str(REPO / "deploy" / "gunicorn_api.conf.py"))["access_log_format"]
# A quote closing the field, a fake request line and status, a backslash, a tab, and
# NEL and U+2028 (line breaks to some log readers).
FORGED = '203.0.113.9" "GET /admin/ HTTP/1.1" 200 1 "-" "x\\\t\u0085\u2028y'
ESCAPED = (
    "203.0.113.9\\x22 \\x22GET /admin/ HTTP/1.1\\x22 200 1 \\x22-\\x22 "
    "\\x22x\\x5C\\x09\\x85\\u2028y"
)
TRUSTED = (ip_network("127.0.0.1/32"),)


async def logged(
    aiohttp_client: Callable[..., Awaitable[Any]],
    settings: ApiSettings,
    caplog: pytest.LogCaptureFixture,
    headers: dict[str, str],
) -> str:
    server = TestServer(create_app(settings))
    await server.start_server(access_log_format=DEPLOY_FORMAT)  # as Gunicorn's worker does
    api = await aiohttp_client(server)
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        assert (await api.get("/healthz", headers=headers)).status == 200
    (record,) = [r for r in caplog.records if r.name == "aiohttp.access"]
    return record.getMessage()


@pytest.mark.parametrize("trusted", [(), TRUSTED], ids=["untrusted peer", "trusted proxy"])
async def test_a_forged_forwarded_for_is_escaped_beside_the_peer(
    aiohttp_client: Callable[..., Awaitable[Any]],
    api_settings: ApiSettings,
    caplog: pytest.LogCaptureFixture,
    trusted: tuple[Any, ...],
) -> None:
    settings = api_settings.model_copy(update={"access_log": "text", "trusted_proxies": trusted})
    headers = {"X-Forwarded-For": FORGED, "User-Agent": 'ua"\\', "X-Request-ID": "r1"}
    line = await logged(aiohttp_client, settings, caplog, headers)
    # The client is the peer unless the peer is a trusted proxy: then its last hop.
    client = ESCAPED if trusted else "127.0.0.1"
    head = f'{client} 127.0.0.1 "{ESCAPED}" "GET /healthz HTTP/1.1" 200 '
    tail = ' "ua\\x22\\x5C" rid=r1'
    assert re.fullmatch(re.escape(head) + r"\d+ \d+\.\d{6}s" + re.escape(tail), line), line
    assert line.count('"') == 6  # the format's own quotes, none of the client's


async def test_the_client_is_a_trusted_proxys_last_hop(
    aiohttp_client: Callable[..., Awaitable[Any]],
    api_settings: ApiSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    chain = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
    for trusted, client in [((), "127.0.0.1"), (TRUSTED, "203.0.113.9")]:
        caplog.clear()
        settings = api_settings.model_copy(
            update={"access_log": "json", "trusted_proxies": trusted}
        )
        entry = orjson.loads(await logged(aiohttp_client, settings, caplog, chain))
        assert (entry["client"], entry["peer"], entry["forwarded_for"]) == (
            client,
            "127.0.0.1",
            "198.51.100.7, 203.0.113.9",
        )


def test_trusted_proxies_are_addresses_or_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8,::1")
    assert ApiSettings.from_env().trusted_proxies == (
        ip_network("127.0.0.1/32"),
        ip_network("10.0.0.0/8"),
        ip_network("::1/128"),
    )
    monkeypatch.delenv("API_TRUSTED_PROXIES")
    assert ApiSettings.from_env().trusted_proxies == ()
