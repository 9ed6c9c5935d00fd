"""Real servers for the fault tests, on the throw-away cluster of tests/pgcluster.py.

Registered through ``pytest_plugins`` in tests/conftest.py. ``pg_cluster`` and
``live_stack`` are made once per session, and only for the tests that ask for
them: aioapi and the Django side start under Gunicorn with the deploy/ configs on
a migrated ``mymoviedb_faults`` holding the sample catalogue and a demo curator.
"""

from __future__ import annotations

import http.client
import http.cookies
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from deploy.processes import (
    BIN,
    REPO,
    SAMPLE,
    Server,
    django_environment,
    manage,
    seed_database,
    start_server,
)
from tests.pgcluster import DATABASE, Cluster, make_cluster
from tests.ports import free_port

__all__ = ["BIN", "REPO", "SAMPLE", "Server", "manage", "start_server"]  # for the fault tests


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


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The session's throw-away PostgreSQL cluster (tests may stop it; they restart it)."""
    yield from make_cluster()


def make_stack(cluster: Cluster, database: str, workdir: Path, **env: str) -> Stack:
    """``database`` created on ``cluster``, migrated, with the sample catalogue and a
    demo curator; ``env`` adds to (or overrides) the servers' environment."""
    cluster.psql(f"CREATE DATABASE {database}", database="postgres")
    environment = django_environment(cluster.url(database), workdir, **env)
    curator = seed_database(environment)
    return Stack(
        cluster, workdir, environment, curator.username, curator.password, curator.token, database
    )


@pytest.fixture(scope="session")
def live_stack(pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """``mymoviedb_faults`` migrated, the sample catalogue and a demo curator in it."""
    stack = make_stack(pg_cluster, DATABASE, tmp_path_factory.mktemp("live"))
    try:
        yield stack
    finally:
        stack.stop_all()
