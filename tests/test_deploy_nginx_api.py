"""The API as a client meets it through the shipped deploy/nginx.conf.

The servers of tests/test_deploy_servers.py (Gunicorn with the deploy/ configs,
production-like settings, an SQLite file) with the sample catalogue and a demo
curator, behind nginx rendered exactly as there. A client that asks for gzip, as
every browser and HTTP library does, gets compressed JSON with a weakened ETag
(nginx's gzip filter adds the ``W/``) and must still be able to write back with
it; nginx's own errors on /api/ must be problem+json like the API's.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import pytest

from deploy import processes
from deploy.processes import NGINX_TEMPLATE, SAMPLE, manage
from tests.ports import free_port
from tests.test_deploy_servers import (  # noqa: F401 (fixtures)
    Launcher,
    Stack,
    django_env,
    launcher,
    needs_nginx,
    stack,
    start_nginx,
    workdir,
)

pytestmark = needs_nginx
GZIP = {"Accept-Encoding": "gzip"}


@dataclass
class Client:
    """HTTPS through nginx, decoding gzip the way a client library does."""

    stack: Stack
    token: str

    def send(
        self, method: str, path: str, body: object = None, **headers: str
    ) -> tuple[http.client.HTTPResponse, bytes]:
        if body is not None:
            headers["Content-Type"] = "application/json"
        if method != "GET":
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        response, raw = self.stack.request(method, path, data, headers)
        coding = response.getheader("Content-Encoding")
        return response, gzip.decompress(raw) if coding == "gzip" else raw


@pytest.fixture(scope="module")
def client(stack: Stack, django_env: dict[str, str]) -> Client:  # noqa: F811
    manage(django_env, "import_movies", str(SAMPLE))
    printed = manage(django_env, "create_demo_curator", "--username", "api-writer")
    token = re.search(r"API token: (\S+)", printed)
    assert token is not None, printed
    return Client(stack, token[1])


def big_film(client: Client) -> int:
    """A film whose detail is long enough (over gzip_min_length) for nginx to gzip:
    the sample's are short, so one gets a long synopsis first."""
    _, body = client.send("GET", "/api/movies?limit=1")
    film = int(json.loads(body)["items"][0]["id"])
    synopsis = "A long synopsis, so the detail is compressed. " * 40
    written, _ = client.send("PATCH", f"/api/movies/{film}", {"synopsis": synopsis})
    assert written.status == 200
    return film


def test_a_gzip_client_reads_then_writes_with_the_etag_it_was_given(client: Client) -> None:
    film = big_film(client)
    path = f"/api/movies/{film}"
    read, body = client.send("GET", path, **GZIP)
    assert read.status == 200
    assert read.getheader("Content-Encoding") == "gzip"
    assert read.getheader("Vary") == "Accept-Encoding"
    tag = read.getheader("ETag") or ""
    assert tag.startswith('W/"'), tag  # nginx weakened the API's strong tag
    title = json.loads(body)["title"]

    patched, patched_body = client.send(
        "PATCH", path, {"title": title + " (restored)"}, **GZIP, **{"If-Match": tag}
    )
    assert patched.status == 200, patched_body
    assert json.loads(patched_body)["title"] == title + " (restored)"
    # The tag read before the write is stale now, weak or strong.
    for stale in (tag, tag.removeprefix("W/")):
        refused, problem = client.send("PATCH", path, {"title": "x"}, **{"If-Match": stale})
        assert refused.status == 412
        assert refused.getheader("Content-Type") == "application/problem+json"
        assert json.loads(problem)["status"] == 412

    again, _ = client.send("GET", path, **GZIP)
    gone, _ = client.send("DELETE", path, **GZIP, **{"If-Match": again.getheader("ETag") or ""})
    assert gone.status == 204
    missing, _ = client.send("GET", path, **GZIP)
    assert missing.status == 404


@pytest.mark.parametrize(
    "path", ["/api/movies?limit=20", "/movies/?limit=20", "/api/people?limit=50"]
)
@pytest.mark.parametrize("coding", [GZIP, {}], ids=["gzip", "identity"])
def test_if_none_match_gives_304_through_nginx(
    client: Client, path: str, coding: dict[str, str]
) -> None:
    """aioapi and the Django comparison views both; nginx compresses what is long."""
    first, body = client.send("GET", path, **coding)
    assert first.status == 200
    assert len(body) > 1024
    assert first.getheader("Content-Encoding") == coding.get("Accept-Encoding")
    tag = first.getheader("ETag") or ""
    again, rest = client.send("GET", path, **coding, **{"If-None-Match": tag})
    assert (again.status, rest) == (304, b"")
    # A tag from the other coding names the same bytes: also 304.
    other = tag.removeprefix("W/") if tag.startswith("W/") else f"W/{tag}"
    crossed, _ = client.send("GET", path, **coding, **{"If-None-Match": other})
    assert crossed.status == 304


# --- nginx's own errors ------------------------------------------------------------


def problem_of(response: http.client.HTTPResponse, body: bytes, status: int) -> dict[str, object]:
    assert response.status == status, body
    assert response.getheader("Content-Type") == "application/problem+json"
    payload = json.loads(body)
    assert payload["type"] == "about:blank" and payload["status"] == status
    assert set(payload) == {"type", "title", "status", "detail"}
    return dict(payload)


def test_a_body_past_the_limit_gets_a_413_problem_on_the_api_and_html_on_the_admin(
    client: Client,
) -> None:
    for path, content_type in (("/api/movies", "application/problem+json"), ("/admin/", "")):
        connection = http.client.HTTPSConnection(
            "localhost", client.stack.https_port, context=client.stack.tls, timeout=20
        )
        try:
            # A 30 MB body: nginx answers from the Content-Length, before reading it.
            connection.putrequest("POST", path)
            connection.putheader("Content-Type", "application/json")
            connection.putheader("Content-Length", str(30 * 1024 * 1024))
            connection.endheaders()
            # nginx may close before it has read this much.
            with contextlib.suppress(OSError):
                connection.send(b"x" * 65536)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if content_type:
            payload = problem_of(response, body, 413)
            assert payload["title"] == HTTPStatus(413).phrase
        else:
            assert response.status == 413
            assert response.getheader("Content-Type") == "text/html"


@pytest.fixture
def upstreamless(launcher: Launcher, stack: Stack) -> Iterator[int]:  # noqa: F811
    """nginx whose API upstream is a port nothing listens on (a stopped API)."""
    server, port, _ = start_nginx(launcher, "nginx-no-api", stack.admin.port, free_port())
    yield port
    server.terminate()


def test_a_stopped_api_gets_a_502_problem(stack: Stack, upstreamless: int) -> None:  # noqa: F811
    connection = http.client.HTTPSConnection("localhost", upstreamless, context=stack.tls)
    connection.request("GET", "/api/movies", headers=GZIP)
    response = connection.getresponse()
    payload = problem_of(response, response.read(), 502)
    assert payload["title"] == "Bad Gateway"
    assert response.getheader("Retry-After") == "5"
    connection.close()


def test_an_api_too_slow_gets_a_504_problem(
    stack: Stack,  # noqa: F811
    launcher: Launcher,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """An upstream that takes the connection and never answers, behind the shipped
    config with proxy_read_timeout cut from 35 s to 1 s (the one change)."""
    text = NGINX_TEMPLATE.read_text()
    assert "proxy_read_timeout 35s;" in text
    template = tmp_path / "nginx.conf"
    template.write_text(text.replace("proxy_read_timeout 35s;", "proxy_read_timeout 1s;"))
    monkeypatch.setattr(processes, "NGINX_TEMPLATE", template)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never accepts
        server, port, _ = start_nginx(
            launcher, "nginx-504", stack.admin.port, silent.getsockname()[1]
        )
        try:
            connection = http.client.HTTPSConnection("localhost", port, context=stack.tls)
            connection.request("GET", "/api/movies")
            response = connection.getresponse()
            payload = problem_of(response, response.read(), 504)
            assert payload["title"] == "Gateway Timeout"
            assert response.getheader("Retry-After") == "5"
            connection.close()
        finally:
            server.terminate()


def test_the_rate_limit_gets_a_429_problem_with_retry_after(
    stack: Stack,  # noqa: F811
    launcher: Launcher,  # noqa: F811
) -> None:
    server, port, _ = start_nginx(
        launcher,
        "nginx-429",
        stack.admin.port,
        stack.api.port,
        MYMOVIEDB_API_RATE="1r/m",
        MYMOVIEDB_API_BURST="1",
    )
    try:
        answers = []
        for _ in range(3):
            connection = http.client.HTTPSConnection("localhost", port, context=stack.tls)
            connection.request("GET", "/api/genres")
            response = connection.getresponse()
            answers.append((response, response.read()))
            connection.close()
        # One at the rate plus a burst of one, then 429.
        assert [response.status for response, _ in answers[:2]] == [200, 200]
        payload = problem_of(*answers[2], 429)
        assert payload["title"] == "Too Many Requests"
        assert answers[2][0].getheader("Retry-After") == "1"
    finally:
        server.terminate()


def test_every_nginx_error_of_the_api_is_a_problem() -> None:
    """nginx answers 503 itself only in configurations other than this one, so all
    are also read from the template: each status goes to a named location that
    returns its problem in the API's shape."""
    text = NGINX_TEMPLATE.read_text()
    for status in (413, 429, 502, 503, 504):
        assert f"error_page {status} @api_{status};" in text
        location = re.search(rf"location @api_{status} {{(.*?)\n    }}", text, re.S)
        assert location is not None, status
        body = re.search(rf"return {status} '(.*)';", location[1])
        assert body is not None, status
        assert json.loads(body[1]) == {
            "type": "about:blank",
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": json.loads(body[1])["detail"],
        }
