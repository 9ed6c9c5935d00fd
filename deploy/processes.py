"""Servers started as child processes: the API and admin under Gunicorn, PgBouncer,
nginx; shared by the local cluster (deploy/cluster.py) and the tests' live stacks.

Every server starts in a session of its own, so stopping it by its pid's process
group takes its workers too, and nothing outlives the cluster that started it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NGINX_TEMPLATE = REPO / "deploy" / "nginx.conf"
SAMPLE = REPO / "movies" / "fixtures" / "sample-movies.json"


@dataclass(frozen=True)
class Curator:
    """The demo curator made by ``create_demo_curator``: admin login and API token."""

    username: str
    password: str
    token: str


def django_environment(database_url: str, workdir: Path, **env: str) -> dict[str, str]:
    """The environment of ``manage.py`` and the servers on ``database_url``: ours,
    without Gunicorn's settings, plus a throw-away secret, plain HTTP on loopback,
    quiet logs; ``env`` adds to it or overrides it."""
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith("GUNICORN")},
        "DJANGO_SETTINGS_MODULE": "mymoviedb.settings",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "local-cluster-only-" + "x" * 40,
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
    return environment


def seed_database(env: dict[str, str]) -> Curator:
    """Migrate ``env``'s database, import the sample catalogue, make a demo curator."""
    manage(env, "migrate", "--no-input", "-v0")
    manage(env, "import_movies", str(SAMPLE))
    printed = manage(env, "create_demo_curator", "--username", "curator")
    match = re.search(r"user: (\S+)  password: (\S+)\nAPI token: (\S+)", printed)
    if match is None:
        raise RuntimeError(f"create_demo_curator printed no credentials: {printed}")
    return Curator(match[1], match[2], match[3])


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


def start_server(
    name: str,
    command: list[str],
    port: int,
    env: dict[str, str],
    workdir: Path,
    ready: Callable[[int], bool] | None = None,
    **popen: Any,
) -> Server:
    """Start a server in the repository, its output in ``workdir/<name>.log``, and wait
    (60 s at most) until it is ``ready`` (by default: answers HTTP); ``popen`` adds
    ``subprocess.Popen`` arguments (another user, for PgBouncer)."""
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, **popen,
        )  # fmt: skip
    server = Server(name, process, log, port)
    deadline = time.monotonic() + 60
    while not (ready or answers)(port):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{name} exited or never answered:\n{server.output()}")
        time.sleep(0.1)
    return server


def answers(port: int) -> bool:
    """Whether an HTTP server answers on ``port``: /healthz on aioapi (200 once a
    worker has built its app); any HTTP answer from the admin, whose /healthz is a 404."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
            connection.sendall(
                b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
            )
            return connection.recv(12).startswith(b"HTTP/1.1")
    except OSError:
        return False


def listens(port: int) -> bool:
    """Whether something accepts connections on ``port`` (PgBouncer speaks no HTTP)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def stop_group(pid: int, timeout: float = 30) -> bool:
    """SIGTERM the process group ``pid`` leads, SIGKILL it after ``timeout``; whether
    it was running. For servers of an earlier run, known only by their pid.

    Gunicorn's and nginx's masters wait for their workers, so the group is done
    when its leader is; what is left of it then (nothing, normally) is killed."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True


def _running(pid: int) -> bool:
    """Whether ``pid`` runs: reaped here if it is our child, and a zombie does not run."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    # The state follows the command, which is in parentheses and may hold spaces.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def manage(env: dict[str, str], *args: str) -> str:
    """``manage.py args`` in the repository with ``env``; its output, or a failure."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {args}: {result.stdout}{result.stderr}")
    return result.stdout


def self_signed_certificate(workdir: Path) -> tuple[Path, Path]:
    """A throw-away certificate for localhost: (certificate, key) in ``workdir``."""
    certificate, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        + ["-nodes", "-days", "1", "-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=DNS:localhost"]
        + ["-keyout", str(key), "-out", str(certificate)],
        check=True,
        capture_output=True,
    )
    return certificate, key


def render_nginx(workdir: Path, name: str, variables: dict[str, str]) -> Path:
    """deploy/nginx.conf through envsubst with only MYMOVIEDB_* names, like the image,
    inside a main configuration like the stock one; the main file's path."""
    names = " ".join(f"${{{key}}}" for key in variables)
    rendered = subprocess.run(
        ["envsubst", names],
        input=NGINX_TEMPLATE.read_text(),
        env={**os.environ, **variables},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "${MYMOVIEDB_" in rendered:
        raise ValueError(f"a MYMOVIEDB_ variable of {NGINX_TEMPLATE} is not given")
    site = workdir / f"{name}-site.conf"
    site.write_text(rendered)
    # What the stock nginx.conf (Debian's or the image's) provides around conf.d/.
    temp = workdir / f"{name}-temp"
    temp.mkdir(mode=0o755)
    main = workdir / f"{name}.conf"
    main.write_text(
        f"""
worker_processes 1;
pid {workdir / name}.pid;
error_log {workdir / name}-error.log info;
daemon off;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {site};
}}
"""
    )
    return main
