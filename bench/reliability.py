"""Shared by bench/overload.py and bench/soak.py: database, API server, samples, results.

Both scripts run aioapi under Gunicorn with deploy/gunicorn_api.conf.py on their
own PostgreSQL database (``mymoviedb_reliability`` by default), which holds the
shared Wikipedia catalogue; bench.catalogue creates, migrates and loads it once.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench.catalogue import CatalogueSpec, database_name, prepare, server_version
from bench.facts import machine, versions
from bench.servers import REPO
from deploy.ports import free_port

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/mymoviedb_reliability"
SHARED_CATALOGUE = REPO.parent / "shared" / "data" / "wikipedia-movies.json.gz"
RESULTS = REPO / "bench" / "results"
MIB = 1024 * 1024
BIN = Path(sys.executable).parent


def base_env(database_url: str) -> dict[str, str]:
    """Production settings (DEBUG off), quiet logs, the bench database."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GUNICORN")}
    return env | {
        "DJANGO_SETTINGS_MODULE": "mymoviedb.settings",
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-" + secrets.token_hex(24),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        "API_ACCESS_LOG": "off",
        "GUNICORN_API_ACCESS_LOG": "",
        "GUNICORN_LOG_LEVEL": "warning",
        "PYTHONPATH": str(REPO),
    }


def prepare_catalogue(database_url: str, say: Callable[[str], None]) -> dict[str, int]:
    """Create, migrate and load the database once (the shared file, no synthetic films)."""
    if not SHARED_CATALOGUE.exists():
        sys.exit(f"the shared catalogue is missing: {SHARED_CATALOGUE}")
    spec = CatalogueSpec(source=str(SHARED_CATALOGUE), synthetic=0, seed=0)
    return prepare(database_url, spec, base_env(database_url), recreate=False, say=say)


def issue_token(database_url: str, username: str) -> str:
    """A new API token of a demo curator (``manage.py create_demo_curator``)."""
    printed = subprocess.run(
        [sys.executable, "manage.py", "create_demo_curator", "--username", username],
        cwd=REPO,
        env=base_env(database_url),
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
                env=base_env(database_url) | settings,
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


def facts(database_url: str) -> dict[str, Any]:
    """Machine, versions and commit, recorded with every result."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        postgres = server_version(conn)
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "database": database_name(database_url),
        "machine": machine(),
        "versions": versions(
            {"postgresql": postgres, "wrk": (wrk.stdout or wrk.stderr).strip().splitlines()[0]}
        ),
    }


def results_dir(label: str, started: datetime | None = None) -> Path:
    """bench/results/<UTC date the run started (default: now)>-<label>/, created."""
    path = RESULTS / f"{started or datetime.now(UTC):%Y-%m-%d}-{label}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_results(directory: Path, results: dict[str, Any], report: str) -> None:
    (directory / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (directory / "report.md").write_text(report)
