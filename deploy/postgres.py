"""A PostgreSQL server of our own, from the installed binaries: a primary or a standby.

Used by the local cluster (deploy/cluster.py) and the tests' throw-away clusters
(tests/pgcluster.py). Each server lives in a directory of its own and listens on
loopback only; a standby is a copy of its primary made with ``pg_basebackup -R``,
so it streams from it as a hot standby; :func:`pgbouncer_ini` is the PgBouncer
configuration the local cluster puts in front of a primary.

initdb refuses to run as root: as root, every server binary runs as the
``postgres`` system user that Debian's package creates (:func:`server_user`).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def server_user() -> str | None:
    """Whom to run the server as: ourselves (None), or ``postgres`` when we are root.

    Raises LookupError as root without a ``postgres`` user (initdb refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise LookupError(
            f"initdb refuses root and there is no {SERVER_USER!r} user to run it as"
        ) from None
    return SERVER_USER


def as_user(user: str | None) -> dict[str, Any]:
    """``subprocess`` arguments that run a child as ``user`` (None: as ourselves)."""
    if user is None:
        return {}
    account = pwd.getpwnam(user)
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def give_to(path: Path, user: str | None) -> None:
    """Make ``path`` (a directory we just made) the server user's."""
    if user is not None:
        account = pwd.getpwnam(user)
        os.chown(path, account.pw_uid, account.pw_gid)


@dataclass
class Cluster:
    """One PostgreSQL server: started, stopped and restarted at will."""

    bindir: Path
    root: Path  # the server's own directory: data/, its log and socket
    port: int
    user: str | None  # run the server as this user (None: as ourselves)
    database: str = "postgres"  # what url() and psql() use unless told otherwise

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str | None = None, **options: str) -> str:
        query = "&".join(f"{key}={value}" for key, value in options.items())
        return f"postgres://postgres@127.0.0.1:{self.port}/{database or self.database}" + (
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
            **as_user(self.user),
        )
        if result.returncode != 0:
            raise RuntimeError(f"{command}: {result.stdout}{result.stderr}")
        return result.stdout

    def initdb(self) -> None:
        # initdb's pg_hba.conf trusts loopback, replication connections included.
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                 "--locale=C", "--no-sync", "--no-instructions")  # fmt: skip

    def clone_of(self, primary: Cluster, apply_delay_seconds: float = 0) -> None:
        """Make this server a streaming standby of ``primary`` (running).

        ``pg_basebackup -R`` writes ``primary_conninfo`` and ``standby.signal``;
        ``apply_delay_seconds`` makes it replay each commit that long after the
        primary made it (``recovery_min_apply_delay``), so its lag is real."""
        self.run("pg_basebackup", "-D", str(self.data), "-R", "-X", "stream", "-c", "fast",
                 "--no-sync", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                 timeout=300)  # fmt: skip
        if apply_delay_seconds:
            self.set_apply_delay(apply_delay_seconds)

    def set_apply_delay(self, seconds: float) -> None:
        """Set a standby's ``recovery_min_apply_delay`` (read again at reload if running)."""
        with (self.data / "postgresql.auto.conf").open("a") as conf:
            conf.write(f"recovery_min_apply_delay = '{round(seconds * 1000)}ms'\n")
        if self.running():
            self.run("pg_ctl", "-D", str(self.data), "reload")

    def start(self) -> None:
        """Start and wait until it accepts connections (a standby: read-only ones)."""
        options = [f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self.root}"]
        options += [f"-c {setting}" for setting in FAST_SETTINGS]
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                 "-o", " ".join(options), "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop (``immediate`` is a crash: no goodbye to the clients)."""
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def psql(self, sql: str, database: str | None = None) -> list[list[str]]:
        """Rows of ``sql`` as lists of text (``psql -At``)."""
        address = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        address += ["-d", database or self.database]
        out = self.run("psql", "-Xq", *address, "-v", "ON_ERROR_STOP=1", "-AtF", "\t", "-c", sql)
        return [line.split("\t") for line in out.splitlines() if line]

    def replay_status(self, *, standby: bool) -> tuple[str, str]:
        """(WAL position, seconds since the last replayed commit or "-") for ``status``."""
        [[lsn, lag]] = self.psql(
            "SELECT coalesce(pg_last_wal_replay_lsn(), pg_current_wal_lsn()), "
            "coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp())::text, '-')"
            if standby
            else "SELECT pg_current_wal_lsn(), '-'"
        )
        return lsn, lag


def pgbouncer_ini(primary_port: int, port: int) -> str:
    """PgBouncer's configuration: every database of the primary, transaction pooling.

    ``auth_type = any`` with a fixed ``user``: the primary trusts loopback, so
    there is no password to check. ``ignore_startup_parameters`` lets psycopg's
    connection options through. ``server_login_retry = 1`` (default 15 s): after a
    failed connection to a restarting primary PgBouncer waited that long before trying
    again, failing (or holding) requests for ~15 s after the primary answered
    (tests/test_client_eye)."""
    return f"""
[databases]
* = host=127.0.0.1 port={primary_port} user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
ignore_startup_parameters = extra_float_digits,options
server_login_retry = 1
"""
