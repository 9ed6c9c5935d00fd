"""A throw-away PostgreSQL cluster for the fault tests (fixtures: tests/live.py).

The server itself is deploy/postgres.py's: from the installed server binaries,
in a temporary directory, on a free port, so a test may stop and restart it
mid-test without touching the PostgreSQL of the suite. Without the binaries the
tests that need it are skipped, saying so (never under CI=true).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.postgres import Cluster, give_to, postgres_bindir, server_user
from tests.ports import free_port

DATABASE = "mymoviedb_faults"

__all__ = ["DATABASE", "Cluster", "make_cluster", "require_server"]


def require_server() -> tuple[Path, str | None]:
    """The server binaries' directory and user, or a skip saying what is missing.

    CI installs PostgreSQL, so there a missing binary is a failure, not a skip."""
    bindir = postgres_bindir()
    reason = (
        "needs the PostgreSQL server binaries (initdb, pg_ctl) for a throw-away cluster: "
        "apt-get install postgresql"
    )
    if bindir is None:
        assert os.environ.get("CI") != "true", reason
        pytest.skip(reason)
    try:
        return bindir, server_user()
    except LookupError as missing:
        pytest.skip(str(missing))


def make_cluster() -> Iterator[Cluster]:
    """A new, started cluster; stopped and deleted afterwards (a fixture's body)."""
    bindir, user = require_server()
    root = Path(tempfile.mkdtemp(prefix="mymoviedb-pg-"))
    give_to(root, user)
    cluster = Cluster(bindir, root, free_port(), user, DATABASE)
    try:
        cluster.initdb()
        cluster.start()
        yield cluster
    finally:
        if cluster.running():
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
