"""Hostile clients of the Django side's exports (/movies/export/): a client that never reads
is cut off after EXPORT_WRITE_TIMEOUT_SECONDS and gives its slot and thread back,
under Gunicorn's gthread worker with deploy/gunicorn_admin.conf.py as deployed.
(aioapi's half, and CSV injection on both servers: tests/test_hostile_exports.py.)"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.http import StreamingHttpResponse
from django.test import Client

from tests.live import BIN, REPO, Server, fetch, manage, start_server
from tests.ports import free_port
from tests.test_export import parse_ndjson

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # WhiteNoise warns on the Django client's first request when collectstatic has not run.
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

STALL_SECONDS = 1.0
EXPORT = "/movies/export/"
EMPTY_EXPORT = f"{EXPORT}?year=1870"  # no film: a whole file at once
STALL_ENDED = f"export ended: the client did not take a chunk within {STALL_SECONDS:g} s"


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Two export slots, a one-second write timeout, and films enough to fill every
    buffer between the server and a client that does not read (about 7 MB of CSV).

    An SQLite file of its own in both runs: an SQLite run's test database is in
    memory, out of another process's reach."""
    workdir = tmp_path_factory.mktemp("stalling-admin")
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("GUNICORN")}
    env.pop("TEST_DATABASE_NAME", None)
    env |= {
        "DJANGO_SETTINGS_MODULE": "mymoviedb.settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "localhost",
        "DATABASE_URL": f"sqlite:///{workdir / 'admin.sqlite3'}",
        "MYMOVIEDB_VAR_DIR": str(workdir / "var"),
        "PYTHONPATH": str(REPO),
        "EXPORT_MAX_CONCURRENT": "2",
        "EXPORT_WRITE_TIMEOUT_SECONDS": str(STALL_SECONDS),
        "GUNICORN_ADMIN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_ADMIN_WORKERS": "1",
        "GUNICORN_ADMIN_THREADS": "4",
        "GUNICORN_ADMIN_ACCESS_LOG": "",
    }
    manage(env, "migrate", "--no-input", "-v0")
    manage(env, "shell", "-c", "from tests.test_export import make_paused_films as m; m()")
    command = [str(BIN / "gunicorn"), "--config", "deploy/gunicorn_admin.conf.py"]
    server = start_server("stalling-admin", command, port, env, workdir)
    try:
        yield server
    finally:
        server.stop()


def never_read(port: int, opened: list[socket.socket]) -> socket.socket:
    """A CSV export requested by a client that reads its status line, then nothing."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small receive window: the kernel's buffers on both sides fill after a few MB.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    opened.append(sock)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {EXPORT}?format=csv HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    assert sock.recv(12) == b"HTTP/1.1 200"  # streaming: it holds a slot
    return sock


def wait_until(done: Callable[[], bool], started: float, why: str) -> None:
    while not done():
        assert time.monotonic() - started < 3 * STALL_SECONDS + 5, why
        time.sleep(0.05)


def test_exports_nobody_reads_are_ended_and_free_their_slots(
    admin: Server, silent_readers: list[socket.socket]
) -> None:
    for _ in range(2):
        never_read(admin.port, silent_readers)
    # They hold both slots: a third export is refused for now.
    assert fetch(admin.port, EMPTY_EXPORT).status == 503
    started = time.monotonic()
    wait_until(lambda: fetch(admin.port, EMPTY_EXPORT).status == 200, started, "slots held")
    assert time.monotonic() - started >= STALL_SECONDS / 2
    # Each ended on one line (logged once its slot is free), and Gunicorn logged no
    # traceback for the write that timed out.
    wait_until(lambda: admin.output().count(STALL_ENDED) == 2, started, admin.output())
    assert "Traceback" not in admin.output()
    reply = fetch(admin.port, f"{EXPORT}?format=ndjson&year=2001")
    assert reply.status == 200
    assert parse_ndjson(reply.body)[1]["_trailer"]["complete"] is True
    # The silent readers' connections were reset, their exports cut short.
    for sock in silent_readers:
        received = bytearray()
        with pytest.raises(ConnectionResetError):
            while chunk := sock.recv(1 << 20):
                received += chunk
        assert b"#complete" not in received


@pytest.mark.parametrize("ending", ["read whole", "closed early"])
def test_the_socket_gets_its_timeout_back(client: Client, settings: Any, ending: str) -> None:
    # The server's next request on the connection must not inherit the export's timeout.
    settings.EXPORT_WRITE_TIMEOUT_SECONDS = 7.0
    ours, theirs = socket.socketpair()
    served_on: dict[str, Any] = {"gunicorn.socket": ours}
    with ours, theirs:
        response = client.get(EXPORT, **served_on)
        assert isinstance(response, StreamingHttpResponse)
        assert ours.gettimeout() == 7.0
        if ending == "read whole":
            b"".join(response.streaming_content)  # type: ignore[arg-type]
        else:
            response.close()
        assert ours.gettimeout() is None
        # An HTTP/2 connection's socket carries other streams: no timeout is set on it.
        response = client.get(EXPORT, SERVER_PROTOCOL="HTTP/2.0", **served_on)
        assert ours.gettimeout() is None
        response.close()


@pytest.mark.parametrize("value", ["0", "-1.5"])
def test_a_write_timeout_that_is_not_positive_stops_start_up(value: str) -> None:
    env = os.environ | {"DEBUG": "1", "EXPORT_WRITE_TIMEOUT_SECONDS": value}
    result = subprocess.run(
        [sys.executable, "-c", "import mymoviedb.settings"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert (
        "ImproperlyConfigured: EXPORT_WRITE_TIMEOUT_SECONDS must be a positive number of "
        f"seconds, not {float(value)!r}." in result.stderr
    )
