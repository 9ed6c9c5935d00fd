"""Real servers for the fault tests, on the throw-away cluster of tests/pgcluster.py.

Registered through ``pytest_plugins`` in tests/conftest.py. ``pg_cluster`` and
``live_stack`` are made once per session, and only for the tests that ask for
them: aioapi and the Django side start under Gunicorn with the deploy/ configs on
a migrated ``mymoviedb_faults`` holding the sample catalogue and a demo curator.
"""

from __future__ import annotations

import http.client
import http.cookies
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.pgcluster import DATABASE, Cluster, make_cluster
from tests.ports import free_port

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SAMPLE = REPO / "movies" / "fixtures" / "sample-movies.json"


@dataclass
class Server:
    """A server process started in its own session, with its output in a file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then SIGKILL to the whole group if it does not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()


@dataclass
class Stack:
    """A migrated database on the cluster, and the servers started on it."""

    cluster: Cluster
    workdir: Path
    env: dict[str, str]
    curator: str  # the demo curator's username
    password: str
    token: str
    database: str = DATABASE
    servers: list[Server] = field(default_factory=list)

    def start(
        self, name: str, command: list[str], port: int, env: dict[str, str] | None = None
    ) -> Server:
        """Start a server and wait until it answers ``/healthz`` or listens."""
        server = start_server(name, command, port, {**self.env, **(env or {})}, self.workdir)
        self.servers.append(server)
        return server

    def api(self, name: str = "api", workers: int = 1, **env: str) -> Server:
        """aioapi under Gunicorn with deploy/gunicorn_api.conf.py."""
        port = free_port()
        command = [str(BIN / "gunicorn"), "--config", "deploy/gunicorn_api.conf.py"]
        settings = {"GUNICORN_API_BIND": f"127.0.0.1:{port}", "GUNICORN_API_WORKERS": str(workers)}
        settings["DATABASE_URL"] = self.cluster.url(self.database, application_name=name)
        return self.start(name, command, port, settings | env)

    def admin(self, name: str = "admin", workers: int = 1, threads: int = 2) -> Server:
        """The Django side under Gunicorn with deploy/gunicorn_admin.conf.py."""
        port = free_port()
        command = [str(BIN / "gunicorn"), "--config", "deploy/gunicorn_admin.conf.py"]
        settings = {
            "GUNICORN_ADMIN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_ADMIN_WORKERS": str(workers),
            "GUNICORN_ADMIN_THREADS": str(threads),
            "DATABASE_URL": self.cluster.url(self.database, application_name=name),
        }
        return self.start(name, command, port, settings)

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()
        self.servers.clear()


def start_server(
    name: str, command: list[str], port: int, env: dict[str, str], workdir: Path
) -> Server:
    """Start a server in the repository, its output in ``workdir/<name>.log``, and wait
    (60 s at most) until it answers ``/healthz`` or listens."""
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    server = Server(name, process, log, port)
    deadline = time.monotonic() + 60
    while not _answers(port):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"{name} exited or never answered:\n{server.output()}")
        time.sleep(0.1)
    return server


def _answers(port: int) -> bool:
    # /healthz on aioapi (200 once a worker has built its app); any HTTP answer from
    # the admin, whose /healthz is a 404.
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
            connection.sendall(
                b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
            )
            return connection.recv(12).startswith(b"HTTP/1.1")
    except OSError:
        return False


@dataclass(frozen=True)
class Reply:
    """One HTTP answer, with how long it took."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes
    seconds: float


def fetch(
    port: int,
    path: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 20,
) -> Reply:
    """One request on a new connection; a hang fails the test after ``timeout``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.monotonic()
    try:
        connection.request(
            method, path, body=body, headers={"Host": "localhost", **(headers or {})}
        )
        response = connection.getresponse()
        data = response.read()
        return Reply(response.status, response.headers, data, time.monotonic() - started)
    finally:
        connection.close()


@dataclass
class AdminSession:
    """A curator logged in to the Django admin, keeping its cookies."""

    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    def get(self, path: str, timeout: float = 20) -> Reply:
        return self._keep(fetch(self.port, path, headers=self._headers(), timeout=timeout))

    def post(self, path: str, form: dict[str, Any]) -> Reply:
        """A form POST with the CSRF token the admin expects."""
        body = urlencode({**form, "csrfmiddlewaretoken": self.cookies["csrftoken"]}, doseq=True)
        headers = {**self._headers(), "Content-Type": "application/x-www-form-urlencoded"}
        return self._keep(fetch(self.port, path, "POST", body.encode(), headers))

    def login(self, username: str, password: str) -> None:
        self.get("/admin/login/")
        reply = self.post("/admin/login/", {"username": username, "password": password})
        assert reply.status == 302, reply.body[:2000]

    def _headers(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{name}={value}" for name, value in self.cookies.items())}

    def _keep(self, reply: Reply) -> Reply:
        for header in reply.headers.get_all("Set-Cookie") or []:
            for name, morsel in http.cookies.SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return reply


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"manage.py {args}: {result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The session's throw-away PostgreSQL cluster (tests may stop it; they restart it)."""
    yield from make_cluster()


def make_stack(cluster: Cluster, database: str, workdir: Path, **env: str) -> Stack:
    """``database`` created on ``cluster``, migrated, with the sample catalogue and a
    demo curator; ``env`` adds to (or overrides) the servers' environment."""
    cluster.psql(f"CREATE DATABASE {database}", database="postgres")
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith("GUNICORN")},
        "DJANGO_SETTINGS_MODULE": "mymoviedb.settings",
        "DATABASE_URL": cluster.url(database),
        "SECRET_KEY": "live-test-only-" + "x" * 40,
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Plain HTTP on loopback: the admin's cookies must come back without TLS.
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "MYMOVIEDB_VAR_DIR": str(workdir / "var"),
        "PYTHONPATH": str(REPO),
        "GUNICORN_API_ACCESS_LOG": "",
        "GUNICORN_ADMIN_ACCESS_LOG": "",
        "GUNICORN_LOG_LEVEL": "warning",
        **env,
    }
    environment.pop("TEST_DATABASE_NAME", None)
    manage(environment, "migrate", "--no-input", "-v0")
    manage(environment, "import_movies", str(SAMPLE))
    printed = manage(environment, "create_demo_curator", "--username", "curator")
    match = re.search(r"user: (\S+)  password: (\S+)\nAPI token: (\S+)", printed)
    assert match is not None, printed
    return Stack(cluster, workdir, environment, match[1], match[2], match[3], database)


@pytest.fixture(scope="session")
def live_stack(pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """``mymoviedb_faults`` migrated, the sample catalogue and a demo curator in it."""
    stack = make_stack(pg_cluster, DATABASE, tmp_path_factory.mktemp("live"))
    try:
        yield stack
    finally:
        stack.stop_all()
