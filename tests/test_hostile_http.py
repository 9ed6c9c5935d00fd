"""Hostile HTTP against the real API server, over raw sockets.

aiohttp's test client cannot send malformed bytes, and the answers to them come
from the connection protocol (aioapi/protocol.py) that only the entry points
install, so each test runs against ``python -m aioapi`` and against Gunicorn with
deploy/gunicorn_api.conf.py, both on an SQLite file of their own with a curator
whose token authenticates the writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.core.exceptions import ImproperlyConfigured

from aioapi.settings import ApiSettings
from tests.api_fixtures import ApiClient, bearer, json_of
from tests.ports import free_port

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HEADER_TIMEOUT = 1.5
BODY_TIMEOUT = 1.5
PROBLEM = "application/problem+json"
# In every malformed request below, so that an answer quoting it is caught.
MARK = b"zqxmark"


@dataclass
class Served:
    """A running API server and the token of a curator who may add films."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int
    token: str

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes
    seconds: float

    def problem(self) -> Any:
        assert self.headers.get("content-type") == PROBLEM, self.raw[:500]
        return orjson.loads(self.body)


@pytest.fixture(scope="module")
def served_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], str]:
    """A migrated SQLite file, a curator's token, and the environment to serve them."""
    workdir = tmp_path_factory.mktemp("hostile")
    env = {key: value for key, value in os.environ.items() if not key.startswith("GUNICORN")}
    env |= {
        "DJANGO_SETTINGS_MODULE": "mymoviedb.settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DEBUG": "0",
        "ALLOWED_HOSTS": "localhost",
        "DATABASE_URL": f"sqlite:///{workdir / 'api.sqlite3'}",
        "MYMOVIEDB_VAR_DIR": str(workdir / "var"),
        "PYTHONPATH": str(REPO),
        "API_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "API_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
        "GUNICORN_API_WORKERS": "1",
        "GUNICORN_API_ACCESS_LOG": "",
    }
    env.pop("TEST_DATABASE_NAME", None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--no-input", "-v0"], cwd=REPO, env=env, check=True)
    printed = subprocess.run(
        [*manage, "create_demo_curator", "--username", "curator"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"API token: (\S+)", printed)
    assert match is not None, printed
    return env, match[1]


@pytest.fixture(scope="module", params=["python -m aioapi", "gunicorn"])
def server(
    request: pytest.FixtureRequest,
    served_env: tuple[dict[str, str], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    """Each entry point in turn, serving the same database."""
    env, token = served_env
    port = free_port()
    if request.param == "gunicorn":
        command = [str(BIN / "gunicorn"), "--config", "deploy/gunicorn_api.conf.py"]
        env = env | {"GUNICORN_API_BIND": f"127.0.0.1:{port}"}
    else:
        command = [sys.executable, "-m", "aioapi", "--port", str(port), "--uvloop"]
    log = tmp_path_factory.mktemp("log") / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    served = Served(request.param, process, log, port, token)
    try:
        deadline = time.monotonic() + 60
        while asyncio.run(_healthz(port)) != 200:
            assert process.poll() is None, served.output()
            assert time.monotonic() < deadline, served.output()
            time.sleep(0.2)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # Whatever the tests sent, nothing was logged as a failure of the server.
    assert "Traceback" not in served.output(), served.output()


async def _healthz(port: int) -> int:
    try:
        return (await exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")).status
    except OSError:
        return 0


async def exchange(port: int, *parts: bytes, pause: float = 0.3, within: float = 10) -> Answer:
    """Send ``parts`` on a new connection (pausing between them), read until it closes."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for index, part in enumerate(parts):
            if index:
                await asyncio.sleep(pause)
            writer.write(part)
            await writer.drain()
        raw = await asyncio.wait_for(_read_answer(reader), within)
    finally:
        writer.close()
    return _parse(raw, time.monotonic() - started)


async def _read_answer(reader: asyncio.StreamReader) -> bytes:
    # Up to the end of the first final response's body (the connection may stay open).
    raw = b""
    while True:
        chunk = await reader.read(65536)
        raw += chunk
        if not chunk or _complete(raw):
            return raw


def _complete(raw: bytes) -> bool:
    final = re.sub(rb"^(HTTP/1\.1 100 Continue\r\n\r\n)", b"", raw)
    head, separator, body = final.partition(b"\r\n\r\n")
    if not separator:
        return False
    length = re.search(rb"(?im)^content-length: *(\d+)", head)
    return length is not None and len(body) >= int(length[1])


def _parse(raw: bytes, seconds: float) -> Answer:
    final = raw.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n")
    head, _, body = final.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines[0] else 0
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return Answer(status, headers, body, raw, seconds)


def post(token: str, headers: str, body: bytes = b"") -> bytes:
    """An authenticated POST /api/movies head (and body) with extra header lines."""
    return (
        f"POST /api/movies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n{headers}\r\n"
    ).encode() + body


# --- 1. charset names are case-insensitive --------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("charset", ["UTF-8", "utf-8", "Utf-8", '"UTF-8"'])
async def test_json_charset_is_case_insensitive(
    api: ApiClient, writer: tuple[Any, str], charset: str
) -> None:
    headers = {**bearer(writer[1]), "Content-Type": f"application/json; charset={charset}"}
    response = await api.post("/api/movies", data=b'{"title": "x", "year": 1999}', headers=headers)
    assert response.status == 201, await response.text()
    assert (await json_of(response))["title"] == "x"


# --- 2. bodies that do not decode, and clients that leave mid-body ----------------

BAD_BODY = {
    "type": "about:blank",
    "title": "Bad Request",
    "status": 400,
    "detail": "The request body could not be read: it does not decode with its Content-Encoding.",
}
JSON = "Content-Type: application/json\r\n"


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
@pytest.mark.parametrize("split", [False, True], ids=["one-packet", "body-later"])
async def test_body_that_does_not_decode_is_a_400_problem(
    server: Served, coding: str, split: bool
) -> None:
    head = post(server.token, f"{JSON}Content-Encoding: {coding}\r\nContent-Length: 4\r\n")
    parts = (head, b"abcd") if split else (head + b"abcd",)
    answer = await exchange(server.port, *parts)
    assert answer.status == 400, answer.raw
    problem = answer.problem()
    # A body refused while its head is parsed gets the protocol's wording.
    assert problem["detail"] in (
        BAD_BODY["detail"],
        "The request body does not decode with its Content-Encoding.",
    )
    assert {key: problem[key] for key in ("type", "title", "status")} == {
        key: BAD_BODY[key] for key in ("type", "title", "status")
    }


async def test_unsupported_content_coding_is_a_415_naming_the_supported_ones(
    server: Served,
) -> None:
    head = post(server.token, f"{JSON}Content-Encoding: compress\r\nContent-Length: 2\r\n")
    answer = await exchange(server.port, head + b"{}")
    assert answer.status == 415, answer.raw
    assert answer.headers["accept-encoding"] == "deflate, gzip, identity"
    assert answer.problem()["detail"] == "The request body's Content-Encoding is not supported."


async def test_client_leaving_mid_body_is_a_499_not_a_500(server: Served) -> None:
    before = await _post_counts(server.port)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(post(server.token, f"{JSON}Content-Length: 100\r\n", b'{"title": "x'))
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.transport.abort()
    deadline = time.monotonic() + 5
    while (after := await _post_counts(server.port)).get("499", 0) == before.get("499", 0):
        assert time.monotonic() < deadline, after
        await asyncio.sleep(0.1)
    assert after.get("499", 0) == before.get("499", 0) + 1
    assert after.get("500", 0) == before.get("500", 0)
    assert "Unhandled" not in server.output()


async def _post_counts(port: int) -> dict[str, float]:
    answer = await exchange(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    pattern = r'api_http_requests_total\{method="POST",route="/api/movies",status="(\d+)"\} (\S+)'
    return {status: float(count) for status, count in re.findall(pattern, answer.body.decode())}


# --- 3. a declared body past the limit is a 413 at once ---------------------------

TOO_LARGE = {
    "type": "about:blank",
    "title": "Request Entity Too Large",
    "status": 413,
    "detail": "The request body is larger than the limit of 1048576 bytes.",
}


@pytest.mark.parametrize(
    "headers",
    ["Content-Length: 99999999999\r\n", "Expect: 100-continue\r\nContent-Length: 5000000\r\n"],
    ids=["no-body", "expect-100-continue"],
)
async def test_declared_length_past_the_limit_is_413_at_once(server: Served, headers: str) -> None:
    answer = await exchange(server.port, post(server.token, JSON + headers), within=3)
    assert answer.status == 413, answer.raw
    assert answer.problem() == TOO_LARGE
    assert b"100 Continue" not in answer.raw
    assert answer.seconds < 2


async def test_expect_100_continue_within_the_limit_continues(server: Served) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        body = b'{"title": "Expected", "year": 2001}'
        headers = f"{JSON}Expect: 100-continue\r\nContent-Length: {len(body)}\r\n"
        writer.write(post(server.token, headers))
        await writer.drain()
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        await writer.drain()
        answer = _parse(await asyncio.wait_for(_read_answer(reader), 5), 0)
    finally:
        writer.close()
    assert answer.status == 201, answer.raw
    assert orjson.loads(answer.body)["title"] == "Expected"


async def test_expect_100_continue_is_not_sent_before_authentication(server: Served) -> None:
    head = (
        "POST /api/movies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n"
        f"{JSON}Expect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    ).encode()
    answer = await exchange(server.port, head, within=3)
    assert answer.status == 401, answer.raw
    assert b"100 Continue" not in answer.raw


# --- 4. malformed HTTP: the right status, as a problem, never echoed --------------

MALFORMED = [
    ("query-over-8k", b"GET /api/movies?q=" + MARK * 1200 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("path-over-8k", b"GET /api/" + MARK * 1200 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("129-headers", b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-%d: " % n + MARK + b"\r\n" for n in range(129)) + b"\r\n", 431),
    ("header-over-8k", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + MARK * 1200
     + b"\r\n\r\n", 431),
    ("raw-ff-in-path", b"GET /api/movies/" + MARK + b"\xff HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("nul-in-header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + MARK + b"\x00\r\n\r\n", 400),
    ("duplicate-length", b"POST /api/movies HTTP/1.1\r\nHost: x\r\nX-A: " + MARK
     + b"\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
    ("negative-length", b"POST /api/movies HTTP/1.1\r\nHost: x\r\nX-A: " + MARK
     + b"\r\nContent-Length: -1\r\n\r\n", 400),
    ("unknown-method", b"ZQXMARK /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 501),
]  # fmt: skip


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
async def test_malformed_http_gets_its_status_as_a_problem_never_echoed(
    server: Served, request_bytes: bytes, status: int
) -> None:
    answer = await exchange(server.port, request_bytes)
    assert answer.status == status, answer.raw[:500]
    problem = answer.problem()
    assert problem["status"] == status
    assert problem["type"] == "about:blank"
    assert problem["detail"]
    assert MARK not in answer.raw.lower()


# --- 5. half-sent headers are cut off after the header-read timeout ---------------


async def test_half_sent_headers_get_408_after_the_header_timeout(server: Served) -> None:
    answer = await exchange(
        server.port, b"GET /api/genres HTTP/1.1\r\nHost: x\r\nX-Slow: ", within=HEADER_TIMEOUT + 5
    )
    assert answer.status == 408, answer.raw
    assert answer.problem() == {
        "type": "about:blank",
        "title": "Request Timeout",
        "status": 408,
        "detail": f"The request headers did not arrive within {HEADER_TIMEOUT:g} s.",
    }
    assert HEADER_TIMEOUT <= answer.seconds < HEADER_TIMEOUT + 2


async def test_idle_keep_alive_connection_outlives_the_header_timeout(server: Served) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        statuses = []
        for _ in range(2):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            statuses.append(_parse(await asyncio.wait_for(_read_answer(reader), 5), 0).status)
            # Idle between requests for longer than the header timeout: no byte of a
            # head has arrived, so only the keep-alive timeout applies.
            await asyncio.sleep(HEADER_TIMEOUT + 1)
    finally:
        writer.close()
    assert statuses == [200, 200]


# --- 6. a body sent a byte at a time is cut off at the body deadline --------------


async def dribble(port: int, head: bytes, *, every: float, within: float) -> tuple[Answer, bool]:
    """Send ``head``, then one body byte every ``every`` seconds until answered:
    the answer, and whether the server closed the connection after it."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    await writer.drain()

    async def feed() -> None:
        with contextlib.suppress(OSError):
            while True:
                await asyncio.sleep(every)
                writer.write(b" ")
                await writer.drain()

    feeder = asyncio.create_task(feed())
    try:
        raw = await asyncio.wait_for(_read_answer(reader), within)
        answered = time.monotonic() - started
        try:
            closed = await asyncio.wait_for(reader.read(), 5) == b""
        except ConnectionResetError:
            closed = True
    finally:
        feeder.cancel()
        writer.close()
    return _parse(raw, answered), closed


async def test_a_body_sent_a_byte_a_second_gets_408_at_the_deadline(server: Served) -> None:
    head = post(server.token, "Content-Type: application/json\r\nContent-Length: 1000\r\n")
    answer, closed = await dribble(server.port, head, every=0.3, within=BODY_TIMEOUT + 5)
    assert answer.status == 408, answer.raw
    assert answer.problem() == {
        "type": "about:blank",
        "title": "Request Timeout",
        "status": 408,
        "detail": f"The request body did not arrive within {BODY_TIMEOUT:g} s.",
    }
    assert answer.headers["connection"] == "close"
    assert closed
    assert BODY_TIMEOUT <= answer.seconds < BODY_TIMEOUT + 2


async def test_a_body_that_arrives_in_time_is_served(server: Served) -> None:
    body = b'{"title": "Slow but in time", "year": 2001}'
    head = post(server.token, f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n")
    answer = await exchange(server.port, head, body[:10], body[10:], pause=BODY_TIMEOUT / 3)
    assert answer.status == 201, answer.raw


def test_header_timeout_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ApiSettings().header_timeout_seconds == 10.0
    monkeypatch.setenv("API_HEADER_TIMEOUT_SECONDS", "0")
    with pytest.raises(ImproperlyConfigured, match="API_HEADER_TIMEOUT_SECONDS='0'"):
        ApiSettings.from_env()
    monkeypatch.setenv("API_HEADER_TIMEOUT_SECONDS", "2.5")
    assert ApiSettings.from_env().header_timeout_seconds == 2.5
