"""A throw-away PostgreSQL cluster for the fault tests (fixtures: tests/live.py).

It comes from the installed server binaries (``initdb``, ``pg_ctl``), lives in a
temporary directory and listens on a random port of 23000-23999, so a test may
stop and restart it mid-test without touching the PostgreSQL of the suite.
Without the binaries the tests that need it are skipped, saying so.

initdb refuses to run as root: as root (CI), the cluster runs as the ``postgres``
system user that Debian's package creates.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.ports import free_port

DATABASE = "mymoviedb_faults"
SERVER_USER = "postgres"
# Only an operating-system crash needs fsync and full pages; the tests crash the
# server alone (pg_ctl -m immediate), which must lose no commit: synchronous_commit
# stays on.
FAST_SETTINGS = ("fsync=off", "full_page_writes=off")


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
