"""Shared fixtures. Django is set up by pytest-django from pyproject's settings."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

# The aioapi tests' fixtures (catalogue, app client, tokens), the throw-away
# PostgreSQL cluster with real servers on it (tests/live.py), and a browser on
# those servers (tests/browser.py).
pytest_plugins = ["tests.api_fixtures", "tests.live", "tests.browser", "tests.cluster"]


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``postgres`` on SQLite, saying why; never skip on PostgreSQL.

    Tests of the SQLite fallback (marked ``sqlite``) are not collected in a
    PostgreSQL run: there is nothing there for them to check.
    """
    if is_postgresql():
        fallback = [item for item in items if item.get_closest_marker("sqlite")]
        if fallback:
            config.hook.pytest_deselected(items=fallback)
            items[:] = [item for item in items if not item.get_closest_marker("sqlite")]
        return
    for item in items:
        marker = item.get_closest_marker("postgres")
        if marker is not None:
            why = marker.kwargs.get("reason", "a PostgreSQL feature")
            item.add_marker(
                pytest.mark.skip(reason=f"needs PostgreSQL ({why}); this run is SQLite")
            )


# Shared by the stalled-export tests of both servers (tests/test_hostile_exports*.py).
@pytest.fixture
def silent_readers() -> Iterator[list[socket.socket]]:
    """Raw sockets that send a request and never read; closed after the test."""
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


@pytest.fixture
def bench_settings(settings: Any) -> Any:
    """bench/settings.py over the product's: the contenders' app (the async views, the
    DRF API, the simulated latency), their URLs and DRF's configuration."""
    import bench.settings as bench

    for name in dir(bench):
        if name.isupper() and getattr(bench, name) != getattr(settings, name, None):
            setattr(settings, name, getattr(bench, name))
    return settings
