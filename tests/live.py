"""Real processes for the fault tests: a throw-away PostgreSQL cluster and servers on it.

Registered through ``pytest_plugins`` in tests/conftest.py. The cluster comes from
the installed server binaries (``initdb``, ``pg_ctl``) in a temporary directory on
a random port of 23000-23999, so a test may stop and restart it mid-test without
touching the PostgreSQL of the suite. It is made once per session, and only for
the tests that ask for it; without the binaries they are skipped, saying so.

initdb refuses to run as root: as root (CI), the cluster runs as the ``postgres``
system user that Debian's package creates.
"""

from __future__ import annotations

import http.client
import http.cookies
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PORTS = range(23000, 24000)
DATABASE = "mymoviedb_faults"
SAMPLE = REPO / "movies" / "fixtures" / "sample-movies.json"
SERVER_USER = "postgres"
# Only an operating-system crash needs fsync and full pages; the tests crash the
# server alone (pg_ctl -m immediate), which must lose no commit: synchronous_commit
# stays on.
FAST_SETTINGS = ("fsync=off", "full_page_writes=off")


def free_port() -> int:
    """A free TCP port in 23000-23999 (the range these tests may use)."""
    for port in random.sample(PORTS, 100):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 23000-23999")


def postgres_bindir() -> Path | None:
    """The directory of the newest installed initdb, pg_ctl and postgres, if any."""

    def complete(directory: Path) -> bool:
        return all((directory / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres"))

    def major(directory: Path) -> int:
        return int(re.sub(r"\D", "", directory.parent.name) or 0)

    # Debian keeps the server binaries off PATH, one directory per major version.
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=major, reverse=True)
    on_path = [Path(initdb).resolve().parent for initdb in filter(None, [shutil.which("initdb")])]
    return next((directory for directory in debian + on_path if complete(directory)), None)


@dataclass
class Cluster:
    """A PostgreSQL cluster of our own: started, stopped and restarted at will."""

    bindir: Path
    root: Path
    port: int
    user: str | None  # run the server as this user (None: as ourselves)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str = DATABASE, **options: str) -> str:
        query = "&".join(f"{key}={value}" for key, value in options.items())
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}" + (
            f"?{query}" if query else ""
        )

    def run(self, *command: str, timeout: float = 60) -> str:
        """Run a server binary as the cluster's user; its output, or a failure with it."""
        result = subprocess.run(
            [str(self.bindir / command[0]), *command[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
            **self._as_user(),
        )
        assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
        return result.stdout

    def initdb(self) -> None:
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                 "--locale=C", "--no-sync", "--no-instructions")  # fmt: skip

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        options = [f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self.root}"]
        options += [f"-c {setting}" for setting in FAST_SETTINGS]
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                 "-o", " ".join(options), "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop (``immediate`` is a crash: no goodbye to the clients)."""
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def psql(self, sql: str, database: str = DATABASE) -> list[list[str]]:
        """Rows of ``sql`` as lists of text (``psql -At``)."""
        address = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database]
        out = self.run("psql", "-X", *address, "-v", "ON_ERROR_STOP=1", "-AtF", "\t", "-c", sql)
        return [line.split("\t") for line in out.splitlines() if line]

    def _as_user(self) -> dict[str, Any]:
        if self.user is None:
            return {}
        account = pwd.getpwnam(self.user)
        return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def make_cluster() -> Iterator[Cluster]:
    """A new, started cluster; stopped and deleted afterwards (a fixture's body)."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip(
            "needs the PostgreSQL server binaries (initdb, pg_ctl) for a throw-away cluster: "
            "apt-get install postgresql"
        )
    user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            pytest.skip(f"initdb refuses root and there is no {SERVER_USER!r} user to run it as")
        user = SERVER_USER
    root = Path(tempfile.mkdtemp(prefix="mymoviedb-pg-"))
    if user is not None:
        account = pwd.getpwnam(user)
        os.chown(root, account.pw_uid, account.pw_gid)
    cluster = Cluster(bindir, root, free_port(), user)
    try:
        cluster.initdb()
        cluster.start()
        yield cluster
    finally:
        if cluster.running():
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


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
    servers: list[Server] = field(default_factory=list)

    def start(
        self, name: str, command: list[str], port: int, env: dict[str, str] | None = None
    ) -> Server:
        """Start a server and wait until it answers ``/healthz`` or listens."""
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                cwd=REPO,
                env={**self.env, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(name, process, log, port)
        self.servers.append(server)
        deadline = time.monotonic() + 60
        while not _answers(port):
            assert process.poll() is None, f"{name} exited:\n{server.output()}"
            assert time.monotonic() < deadline, f"{name} never answered:\n{server.output()}"
            time.sleep(0.1)
        return server

    def api(self, name: str = "api", workers: int = 1, **env: str) -> Server:
        """aioapi under Gunicorn with deploy/gunicorn_api.conf.py."""
        port = free_port()
        command = [str(BIN / "gunicorn"), "--config", "deploy/gunicorn_api.conf.py"]
        settings = {"GUNICORN_API_BIND": f"127.0.0.1:{port}", "GUNICORN_API_WORKERS": str(workers)}
        settings["DATABASE_URL"] = self.cluster.url(application_name=name)
        return self.start(name, command, port, settings | env)

    def admin(self, name: str = "admin", workers: int = 1, threads: int = 2) -> Server:
        """The Django side under Gunicorn with deploy/gunicorn_admin.conf.py."""
        port = free_port()
        command = [str(BIN / "gunicorn"), "--config", "deploy/gunicorn_admin.conf.py"]
        settings = {
            "GUNICORN_ADMIN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_ADMIN_WORKERS": str(workers),
            "GUNICORN_ADMIN_THREADS": str(threads),
            "DATABASE_URL": self.cluster.url(application_name=name),
        }
        return self.start(name, command, port, settings)

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()
        self.servers.clear()


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


@pytest.fixture(scope="session")
def live_stack(pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """``mymoviedb_faults`` migrated, the sample catalogue and a demo curator in it."""
    pg_cluster.psql(f"CREATE DATABASE {DATABASE}", database="postgres")
    workdir = tmp_path_factory.mktemp("live")
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("GUNICORN")},
        "DJANGO_SETTINGS_MODULE": "mymoviedb.settings",
        "DATABASE_URL": pg_cluster.url(),
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
    }
    env.pop("TEST_DATABASE_NAME", None)
    manage(env, "migrate", "--no-input", "-v0")
    manage(env, "import_movies", str(SAMPLE))
    printed = manage(env, "create_demo_curator", "--username", "curator")
    match = re.search(r"user: (\S+)  password: (\S+)\nAPI token: (\S+)", printed)
    assert match is not None, printed
    stack = Stack(pg_cluster, workdir, env, match[1], match[2], match[3])
    try:
        yield stack
    finally:
        stack.stop_all()
