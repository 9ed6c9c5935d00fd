"""aioapi as deployed (Gunicorn with deploy/gunicorn_api.conf.py), for the
reliability scripts bench/overload.py and bench/soak.py: its catalogue, a token,
the server, and what to sample of it (worker RSS, PostgreSQL backends).

Both scripts run it on their own PostgreSQL database (``mymoviedb_reliability`` by
default), which holds the shared Wikipedia catalogue; bench.catalogue creates,
migrates and loads it once. The environment, results folder and facts are
bench/scaffold.py's.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg

from bench.catalogue import CatalogueSpec, prepare
from bench.scaffold import server_env
from bench.servers import REPO
from deploy.ports import free_port

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/mymoviedb_reliability"
SHARED_CATALOGUE = REPO.parent / "shared" / "data" / "wikipedia-movies.json.gz"
MIB = 1024 * 1024
BIN = Path(sys.executable).parent
# Gunicorn's own logs quiet, as the bench's servers; the pool is left as deployed.
QUIET = {"GUNICORN_API_ACCESS_LOG": "", "GUNICORN_LOG_LEVEL": "warning"}


def api_env(database_url: str) -> dict[str, str]:
    """The bench servers' environment, the deployed pool, Gunicorn quiet."""
    return server_env(database_url, pool_size=None) | QUIET


def prepare_catalogue(database_url: str, say: Callable[[str], None]) -> dict[str, int]:
    """Create, migrate and load the database once (the shared file, no synthetic films)."""
    if not SHARED_CATALOGUE.exists():
        sys.exit(f"the shared catalogue is missing: {SHARED_CATALOGUE}")
    spec = CatalogueSpec(source=str(SHARED_CATALOGUE), synthetic=0, seed=0)
    return prepare(database_url, spec, api_env(database_url), recreate=False, say=say)


def issue_token(database_url: str, username: str) -> str:
    """A new API token of a demo curator (``manage.py create_demo_curator``)."""
    printed = subprocess.run(
        [sys.executable, "manage.py", "create_demo_curator", "--username", username],
        cwd=REPO,
        env=api_env(database_url),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"API token: (\S+)", printed)
    if match is None:
        sys.exit(f"create_demo_curator printed no token:\n{printed}")
    return match[1]


@dataclass
class ApiServer:
    """aioapi under Gunicorn with deploy/gunicorn_api.conf.py."""

    process: subprocess.Popen[bytes]
    port: int
    command: list[str]
    settings: dict[str, str]
    log: Path

    @classmethod
    def start(cls, database_url: str, log: Path, **settings: str) -> ApiServer:
        port = free_port()
        settings = {"GUNICORN_API_BIND": f"127.0.0.1:{port}", **settings}
        command = [str(BIN / "gunicorn"), "--config", "deploy/gunicorn_api.conf.py"]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                cwd=REPO,
                env=api_env(database_url) | settings,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = cls(process, port, command, settings, log)
        server.wait_ready(int(settings.get("GUNICORN_API_WORKERS", "1")))
        return server

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children()
        except psutil.NoSuchProcess:
            return []

    def wait_ready(self, workers: int, timeout: float = 90) -> None:
        """Until every worker has built its app (each answers /healthz)."""
        deadline = time.monotonic() + timeout
        while len(self.workers()) < workers or not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                sys.exit(f"the API did not start:\n{self.log.read_text(errors='replace')}")
            time.sleep(0.2)
        time.sleep(1.0)  # the other workers finish their factory meanwhile

    def _healthy(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as connection:
                connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return connection.recv(12) == b"HTTP/1.1 200"
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def rss_mib(processes: list[psutil.Process]) -> dict[str, float]:
    """Resident memory of each process, in MiB, keyed by pid."""
    found = {}
    for process in processes:
        try:
            found[str(process.pid)] = round(process.memory_info().rss / MIB, 1)
        except psutil.NoSuchProcess:
            continue
    return found


def backends(database_url: str) -> dict[str, int]:
    """Connections to the bench database by state (this one excluded)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY 1"
        ).fetchall()
    return dict(Counter({str(state): int(count) for state, count in rows}))
