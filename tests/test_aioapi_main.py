"""``python -m aioapi`` as a real process: it serves, and SIGTERM lets requests finish."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.ports import free_port

REPO = Path(__file__).resolve().parent.parent
# Each query of the served process waits this long: a request is in flight for a while.
LATENCY_MS = 600


@pytest.fixture(scope="module")
def server_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a served process: its own migrated SQLite database."""
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env |= {
        "MYMOVIEDB_VAR_DIR": str(tmp_path_factory.mktemp("aioapi-main")),
        "DJANGO_SETTINGS_MODULE": "mymoviedb.settings",
        "API_ACCESS_LOG": "off",
    }
    migrate = [sys.executable, "manage.py", "migrate", "--no-input", "-v0"]
    subprocess.run(migrate, cwd=REPO, env=env, check=True, timeout=120)
    return env


@pytest.fixture(params=[False, True], ids=["asyncio", "uvloop"])
def server(
    request: pytest.FixtureRequest, server_env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    command = [sys.executable, "-m", "aioapi", "--host", "127.0.0.1", "--port", str(port)]
    if request.param:
        command.append("--uvloop")
    # The bench's settings: their app installs the simulated latency.
    env = server_env | {"DJANGO_SETTINGS_MODULE": "bench.settings"}
    env |= {"SIMULATED_DB_LATENCY_MS": str(LATENCY_MS)}
    process = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_listening(port, process)
        yield process, base
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def wait_until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited during start-up"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


async def test_sigterm_lets_in_flight_requests_finish(
    server: tuple[subprocess.Popen[bytes], str],
) -> None:
    process, base = server
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/healthz") as response:
            assert response.status == 200

        async def slow() -> tuple[int, bytes]:
            async with session.get(f"{base}/api/genres") as response:
                return response.status, await response.read()

        started = time.monotonic()
        in_flight = asyncio.ensure_future(slow())
        await asyncio.sleep(LATENCY_MS / 3000)  # the request is now waiting on its query
        process.send_signal(signal.SIGTERM)
        status, body = await in_flight
        assert (status, body) == (200, b'{"items":[]}')
        assert time.monotonic() - started >= LATENCY_MS / 1000

    exit_code = await asyncio.to_thread(process.wait, 15)
    assert exit_code == 0
    assert process.stderr is not None
    errors = process.stderr.read().decode()
    assert "Traceback" not in errors
