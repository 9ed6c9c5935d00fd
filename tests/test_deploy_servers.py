"""The deploy/ configurations, run for real on loopback.

Gunicorn runs with each config (the admin on an SQLite file made here, the API
with aioapi's own factory), serves requests, and stops cleanly on SIGTERM. nginx
(Debian's package) runs deploy/nginx.conf rendered by envsubst exactly as the
nginx image renders its templates, inside a minimal main config that stands in
for the stock /etc/nginx/nginx.conf, in front of both servers. Settings are
production-like: DEBUG off, HTTPS redirect on, HSTS, secure cookies.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml

from deploy.processes import render_nginx, self_signed_certificate
from tests.ports import free_port
from tests.test_deploy_compose import COMPOSE, read_env_example

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GRACEFUL_SECONDS = 10
PASSWORD = "deploy-test-" + secrets.token_hex(8)


@dataclass
class Server:
    """A server process with its output in a file."""

    process: subprocess.Popen[bytes]
    log: Path
    port: int

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert time.monotonic() < deadline, f"{text!r} not in:\n{self.output()}"
            time.sleep(0.05)
        return self.output()

    def terminate(self) -> tuple[int, float]:
        """SIGTERM, then the exit code and how long the shutdown took."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=GRACEFUL_SECONDS + 10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"no exit within the graceful timeout:\n{self.output()}")
        return code, time.monotonic() - started


@dataclass
class Launcher:
    """Starts servers in one directory and, whatever happens, stops them all."""

    workdir: Path
    started: list[Server]

    def start(self, command: list[str], env: dict[str, str], name: str, port: int) -> Server:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(process, log, port)
        self.started.append(server)
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"{name} exited:\n{server.output()}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return server
            except OSError:
                assert time.monotonic() < deadline, f"{name} never listened:\n{server.output()}"
                time.sleep(0.1)

    def stop_all(self) -> None:
        for server in self.started:
            if server.process.poll() is None:
                server.process.send_signal(signal.SIGTERM)
        for server in self.started:
            try:
                server.process.wait(timeout=GRACEFUL_SECONDS + 10)
            except subprocess.TimeoutExpired:
                os.killpg(server.process.pid, signal.SIGKILL)
                server.process.wait()


def get(port: int, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        response.read()
        return response
    finally:
        connection.close()


@pytest.fixture(scope="module")
def launcher() -> Iterator[Launcher]:
    # Not pytest's tmp_path: nginx's workers (www-data when started as root) must
    # be able to read the static files and the certificate, so every directory on
    # the way is world-traversable.
    path = Path(tempfile.mkdtemp(prefix="mymoviedb-deploy-"))
    path.chmod(0o755)
    launcher = Launcher(path, [])
    try:
        yield launcher
    finally:
        launcher.stop_all()
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def workdir(launcher: Launcher) -> Path:
    return launcher.workdir


@pytest.fixture(scope="module")
def django_env(workdir: Path) -> dict[str, str]:
    """Production-like settings on an SQLite file, migrated, static files collected."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mymoviedb.settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DEBUG": "0",
        "ALLOWED_HOSTS": "localhost",
        "SECURE_SSL_REDIRECT": "1",
        "DATABASE_URL": f"sqlite:///{workdir / 'site.sqlite3'}",
        "MYMOVIEDB_VAR_DIR": str(workdir / "var"),
        "STATIC_ROOT": str(workdir / "static"),
        "DJANGO_SUPERUSER_USERNAME": "curator",
        "DJANGO_SUPERUSER_EMAIL": "curator@example.org",
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
        "GUNICORN_ADMIN_WORKERS": "2",
        "GUNICORN_ADMIN_THREADS": "2",
        "GUNICORN_ADMIN_GRACEFUL_TIMEOUT_SECONDS": str(GRACEFUL_SECONDS),
        "GUNICORN_API_WORKERS": "2",
        "GUNICORN_API_GRACEFUL_TIMEOUT_SECONDS": str(GRACEFUL_SECONDS),
        "API_TRUSTED_PROXIES": "127.0.0.1,::1",
        "PYTHONPATH": str(REPO),
    }
    env.pop("TEST_DATABASE_NAME", None)
    manage = [sys.executable, "manage.py"]
    for command in (["migrate", "--no-input"], ["collectstatic", "--no-input"]):
        subprocess.run(manage + command, cwd=REPO, env=env, check=True, capture_output=True)
    subprocess.run([*manage, "createsuperuser", "--no-input"], cwd=REPO, env=env, check=True)
    (workdir / "static").chmod(0o755)
    return env


def start_admin(django_env: dict[str, str], launcher: Launcher, name: str = "admin") -> Server:
    port = free_port()
    env = {**django_env, "GUNICORN_ADMIN_BIND": f"127.0.0.1:{port}"}
    command = [str(BIN / "gunicorn"), "--config", "deploy/gunicorn_admin.conf.py"]
    return launcher.start(command, env, name, port)


def start_api(django_env: dict[str, str], launcher: Launcher, name: str = "api") -> Server:
    port = free_port()
    env = {**django_env, "GUNICORN_API_BIND": f"127.0.0.1:{port}"}
    command = [str(BIN / "gunicorn"), "--config", "deploy/gunicorn_api.conf.py"]
    server = launcher.start(command, env, name, port)
    # The arbiter listens before the workers have awaited the app factory.
    deadline = time.monotonic() + 30
    while get(port, "/healthz").status != 200:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.2)
    return server


# --- Gunicorn, each config on its own -------------------------------------------


def test_admin_gunicorn_serves_and_finishes_a_request_after_sigterm(
    django_env: dict[str, str], launcher: Launcher
) -> None:
    admin = start_admin(django_env, launcher, "admin-alone")
    # Behind nginx the scheme comes from X-Forwarded-Proto; without it, HTTPS redirect.
    assert get(admin.port, "/admin/login/", {"Host": "localhost"}).status == 301
    secure = get(admin.port, "/admin/login/", {"Host": "localhost", "X-Forwarded-Proto": "https"})
    assert secure.status == 200
    assert secure.getheader("Strict-Transport-Security") == "max-age=3600; includeSubDomains"
    # A request in flight when SIGTERM arrives: its body is still on the way.
    body = urlencode({"username": "curator", "password": "wrong"}).encode()
    slow = socket.create_connection(("127.0.0.1", admin.port), timeout=20)
    slow.sendall(
        b"POST /admin/login/ HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-Proto: https\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:5]
    )
    time.sleep(0.5)
    started = time.monotonic()
    admin.process.send_signal(signal.SIGTERM)
    admin.wait_for_output("Handling signal: term")
    time.sleep(0.5)
    slow.sendall(body[5:])
    reply = b""
    while chunk := slow.recv(65536):
        reply += chunk
    slow.close()
    # Finished, not cut off: CSRF refuses the form (403), but Django answered.
    assert reply.startswith(b"HTTP/1.1 403"), reply[:200]
    code = admin.process.wait(timeout=GRACEFUL_SECONDS + 10)
    assert code == 0, admin.output()
    assert time.monotonic() - started < GRACEFUL_SECONDS
    assert "Shutting down: Master" in admin.output()


def test_api_gunicorn_serves_and_stops_cleanly(
    django_env: dict[str, str], launcher: Launcher
) -> None:
    api = start_api(django_env, launcher, "api-alone")
    health = get(api.port, "/healthz", {"X-Request-ID": "probe-123"})
    assert health.status == 200
    # Gunicorn's access log, in aiohttp's format syntax, names the request id.
    api.wait_for_output("rid=probe-123")
    assert "aioapi.worker.DrainingWorker" in api.output()
    code, seconds = api.terminate()
    assert code == 0, api.output()
    assert seconds < GRACEFUL_SECONDS
    assert "Shutting down: Master" in api.output()


# --- nginx in front of both -----------------------------------------------------

needs_nginx = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("nginx", "envsubst", "openssl")),
    reason="needs nginx, envsubst and openssl (apt-get install nginx gettext-base openssl)",
)


@dataclass
class Stack:
    admin: Server
    api: Server
    nginx: Server
    https_port: int
    http_port: int
    tls: ssl.SSLContext
    static_root: Path

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[http.client.HTTPResponse, bytes]:
        connection = http.client.HTTPSConnection(
            "localhost", self.https_port, context=self.tls, timeout=20
        )
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response, response.read()
        finally:
            connection.close()


def start_nginx(
    launcher: Launcher, name: str, admin_port: int, api_port: int, **overrides: str
) -> tuple[Server, int, int]:
    workdir = launcher.workdir
    https_port, http_port = free_port(), free_port()
    variables = {
        "MYMOVIEDB_ADMIN_UPSTREAM": f"127.0.0.1:{admin_port}",
        "MYMOVIEDB_API_UPSTREAM": f"127.0.0.1:{api_port}",
        "MYMOVIEDB_STATIC_ROOT": str(workdir / "static"),
        "MYMOVIEDB_HTTP_PORT": f"127.0.0.1:{http_port}",
        "MYMOVIEDB_HTTPS_PORT": f"127.0.0.1:{https_port}",
        "MYMOVIEDB_SERVER_NAME": "localhost",
        "MYMOVIEDB_TLS_CERTIFICATE": str(workdir / "cert.pem"),
        "MYMOVIEDB_TLS_CERTIFICATE_KEY": str(workdir / "key.pem"),
        # The compose.yml defaults, unless a test says otherwise.
        "MYMOVIEDB_MAX_BODY_SIZE": "1m",
        "MYMOVIEDB_API_RATE_LIMIT": "on",
        "MYMOVIEDB_API_RATE": "50r/s",
        "MYMOVIEDB_API_BURST": "100",
        **overrides,
    }
    main = render_nginx(workdir, name, variables)
    nginx = shutil.which("nginx")
    assert nginx is not None
    command = [nginx, "-p", str(workdir), "-e", str(workdir / f"{name}-error.log"), "-c", str(main)]
    subprocess.run([*command, "-t"], check=True, capture_output=True)
    return launcher.start(command, dict(os.environ), name, https_port), https_port, http_port


@pytest.fixture(scope="module")
def stack(django_env: dict[str, str], launcher: Launcher) -> Stack:
    workdir = launcher.workdir
    if not all(shutil.which(tool) for tool in ("nginx", "envsubst", "openssl")):
        pytest.skip("needs nginx, envsubst and openssl")
    self_signed_certificate(workdir)
    admin = start_admin(django_env, launcher)
    api = start_api(django_env, launcher)
    nginx, https_port, http_port = start_nginx(launcher, "nginx", admin.port, api.port)
    tls = ssl.create_default_context(cafile=str(workdir / "cert.pem"))
    return Stack(admin, api, nginx, https_port, http_port, tls, workdir / "static")


def probe() -> str:
    return uuid.uuid4().hex


@needs_nginx
def test_nginx_routes_api_to_aiohttp_and_admin_to_gunicorn(stack: Stack) -> None:
    api_probe, movies_probe, admin_probe = probe(), probe(), probe()
    stack.request("GET", f"/api/movies?probe={api_probe}")
    stack.request("GET", f"/movies/?probe={movies_probe}")
    stack.request("GET", f"/admin/login/?probe={admin_probe}")
    stack.api.wait_for_output(api_probe)
    stack.admin.wait_for_output(admin_probe)
    stack.admin.wait_for_output(movies_probe)
    assert api_probe not in stack.admin.output()
    assert admin_probe not in stack.api.output() and movies_probe not in stack.api.output()


@needs_nginx
def test_nginx_serves_the_static_files_itself(stack: Stack) -> None:
    marker = probe()
    response, body = stack.request("GET", f"/static/admin/css/base.css?probe={marker}")
    assert response.status == 200
    assert body == (stack.static_root / "admin" / "css" / "base.css").read_bytes()
    assert response.getheader("Content-Type") == "text/css"
    assert response.getheader("Cache-Control") == "max-age=3600"
    missing, _ = stack.request("GET", "/static/admin/css/no-such-file.css")
    assert missing.status == 404
    time.sleep(0.2)
    assert marker not in stack.admin.output()


@needs_nginx
def test_nginx_refuses_bodies_above_client_max_body_size(stack: Stack) -> None:
    marker = probe()
    headers = {"Content-Type": "application/json"}
    response, _ = stack.request("POST", f"/api/movies?probe={marker}", b"x" * 1_100_000, headers)
    assert response.status == 413
    under, _ = stack.request("POST", f"/api/movies?probe={marker}", b"{}", headers)
    assert under.status != 413
    stack.api.wait_for_output(marker)
    # Only the small request reached aiohttp.
    assert stack.api.output().count(marker) == 1


@needs_nginx
def test_forwarded_headers_let_django_see_https_and_the_real_host(stack: Stack) -> None:
    """A whole admin login through nginx: it works only if Django sees HTTPS (no
    redirect, Secure cookies, CSRF's HTTPS origin check) and the Host with its port."""
    origin = f"https://localhost:{stack.https_port}"
    # A client's own X-Forwarded-Proto is overwritten, never believed.
    page, html = stack.request("GET", "/admin/login/", headers={"X-Forwarded-Proto": "http"})
    assert page.status == 200
    cookie = page.getheader("Set-Cookie") or ""
    assert cookie.startswith("csrftoken=") and "Secure" in cookie
    csrf_cookie = cookie.split(";", 1)[0]
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert token is not None
    form = urlencode(
        {
            "username": "curator",
            "password": PASSWORD,
            "csrfmiddlewaretoken": token[1].decode(),
            "next": "/admin/",
        }
    )
    login, _ = stack.request(
        "POST",
        "/admin/login/",
        form.encode(),
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": csrf_cookie,
            "Origin": origin,
            "Referer": f"{origin}/admin/login/",
        },
    )
    assert login.status == 302, login.getheaders()
    assert login.getheader("Location") == "/admin/"
    session = next(
        value.split(";", 1)[0]
        for name, value in login.getheaders()
        if name == "Set-Cookie" and value.startswith("sessionid=")
    )
    index, body = stack.request("GET", "/admin/", headers={"Cookie": session})
    assert index.status == 200
    assert b"mymoviedb curation" in body
    # X-Forwarded-For: nginx appends the peer to what the client sent.
    marker = probe()
    stack.request(
        "GET", f"/admin/login/?probe={marker}", headers={"X-Forwarded-For": "203.0.113.9"}
    )
    line = next(line for line in stack.admin.wait_for_output(marker).splitlines() if marker in line)
    # The peer (nginx) first; the chain as a field of its own; no proxy is trusted here.
    assert line.startswith("127.0.0.1 ")
    assert ' client=127.0.0.1 forwarded_for="203.0.113.9, 127.0.0.1" ' in line
    # nginx's request id reaches Gunicorn, so the two logs join on it.
    request_id = re.search(r'rid="([0-9a-f]{32})"$', line)
    assert request_id is not None
    stack.nginx.wait_for_output(f"rid={request_id[1]}")


@needs_nginx
def test_compose_healthchecks_pass_against_the_real_servers(stack: Stack) -> None:
    """compose.yml's healthcheck commands, pointed at these servers' ports."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name, port, container_port in (
        ("admin", stack.admin.port, "8000"),
        ("api", stack.api.port, "8080"),
    ):
        code = services[name]["healthcheck"]["test"][3]
        assert container_port in code
        for target, healthy in ((port, True), (free_port(), False)):
            result = subprocess.run(
                [sys.executable, "-c", code.replace(container_port, str(target))],
                capture_output=True,
                timeout=30,
            )
            assert (result.returncode == 0) is healthy, (name, target, result.stderr)


@needs_nginx
def test_plain_http_redirects_to_https(stack: Stack) -> None:
    response = get(stack.http_port, "/admin/?x=1", {"Host": "localhost"})
    assert response.status == 301
    assert response.getheader("Location") == "https://localhost/admin/?x=1"


@needs_nginx
def test_paths_outside_the_routes_are_not_public(stack: Stack) -> None:
    for path in ("/metrics", "/readyz", "/", "/manage.py"):
        response, _ = stack.request("GET", path)
        assert response.status == 404, path
        assert response.getheader("Server") == "nginx", path  # no version number


@needs_nginx
def test_api_rate_limit_answers_429_and_can_be_switched_off(
    stack: Stack, launcher: Launcher
) -> None:
    ports = (stack.admin.port, stack.api.port)
    limited, limited_port, _ = start_nginx(
        launcher, "nginx-limited", *ports, MYMOVIEDB_API_RATE="1r/m", MYMOVIEDB_API_BURST="2"
    )
    unlimited, unlimited_port, _ = start_nginx(
        launcher,
        "nginx-unlimited",
        *ports,
        MYMOVIEDB_API_RATE="1r/m",
        MYMOVIEDB_API_BURST="2",
        MYMOVIEDB_API_RATE_LIMIT="off",
    )
    try:
        statuses: dict[int, list[int]] = {}
        for port in (limited_port, unlimited_port):
            statuses[port] = []
            for _ in range(5):
                connection = http.client.HTTPSConnection(
                    "localhost", port, context=stack.tls, timeout=20
                )
                connection.request("GET", "/api/movies")
                statuses[port].append(connection.getresponse().status)
                connection.close()
        # One request at the rate plus a burst of two, then 429 until a minute passes.
        assert [status == 429 for status in statuses[limited_port]] == [False] * 3 + [True] * 2
        assert 429 not in statuses[unlimited_port]
    finally:
        for server in (limited, unlimited):
            code, _ = server.terminate()
            assert code == 0


# --- Django's deployment checklist ------------------------------------------------


def test_check_deploy_passes_with_the_production_settings_of_env_example() -> None:
    values = read_env_example()
    # The example leaves the secret empty on purpose; an operator generates one.
    values["SECRET_KEY"] = secrets.token_urlsafe(50)
    env = {**os.environ, **values, "DJANGO_SETTINGS_MODULE": "mymoviedb.settings"}
    # pytest's defaults (pyproject) must not leak into a production check.
    env.pop("SECURE_SSL_REDIRECT", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    # And the same check does fail on development settings: the test can fail.
    env["DEBUG"] = "1"
    failing = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert failing.returncode != 0
    assert "security.W018" in failing.stderr
