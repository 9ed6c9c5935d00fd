"""Clients generated from /api/openapi.json, used against a live server.

openapi-python-client (the dev extra) and openapi-typescript (npm, installed by
this test under var/node-clients from tests/clients/package.json) each generate
from the document the server serves; a short script per generator then lists,
pages by ``next``, filters, reads, writes with If-Match and reads a problem
through the generated code. The TypeScript script is type-checked against the
generated types by ``tsc`` before node runs it. Without node and npm the
TypeScript test is skipped, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.request import urlopen

import pytest

from aioapi.app import create_app
from aioapi.settings import ApiSettings
from tests.api_fixtures import build_catalogue, make_token
from tests.test_schemathesis import ThreadedServer

pytestmark = pytest.mark.django_db(transaction=True)
REPO = Path(__file__).resolve().parent.parent
CLIENTS = Path(__file__).resolve().parent / "clients"
NODE_PREFIX = REPO / "var" / "node-clients"


@pytest.fixture
def token() -> str:
    build_catalogue()
    return make_token("change_movie")[1]


@pytest.fixture
def server(token: str, api_settings: ApiSettings) -> Iterator[ThreadedServer]:
    server = ThreadedServer(create_app(api_settings))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def document(server: ThreadedServer, tmp_path: Path) -> Path:
    """The document as the server serves it, saved for the generators."""
    path = tmp_path / "openapi.json"
    with urlopen(f"{server.url}/api/openapi.json", timeout=30) as response:
        path.write_bytes(response.read())
    return path


def run(command: list[str], cwd: Path, **env: str) -> str:
    result = subprocess.run(
        command, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_the_python_client_lists_pages_filters_reads_writes_and_reads_a_problem(
    server: ThreadedServer, token: str, document: Path, tmp_path: Path
) -> None:
    generator = Path(sys.executable).parent / "openapi-python-client"
    assert generator.exists(), "openapi-python-client is in the dev extra: make setup"
    package = tmp_path / "mymoviedb_client"
    output = run(
        [str(generator), "generate", "--path", str(document), "--output-path", str(package),
         "--meta", "none", "--config", str(CLIENTS / "openapi-python-client.yaml")],
        tmp_path,
    )  # fmt: skip
    # Warnings are printed for what it could not generate: none is expected.
    assert "Warning" not in output, output
    printed = run(
        [sys.executable, str(CLIENTS / "python_client.py"), server.url, token],
        tmp_path,
        PYTHONPATH=str(tmp_path),
    )
    assert printed == "python client: ok\n"


def node_tools() -> tuple[str, str] | None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node and npm are required under CI (apt-get install nodejs npm)")
        pytest.skip("needs node and npm (apt-get install nodejs npm)")
    return node, npm


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """openapi-typescript and typescript at the versions of tests/clients/package.json,
    installed once under var/ (not into the repository's tree or globally)."""
    tools = node_tools()
    assert tools is not None
    manifest = (CLIENTS / "package.json").read_text()
    NODE_PREFIX.mkdir(parents=True, exist_ok=True)
    installed = NODE_PREFIX / "package.json"
    if not installed.exists() or installed.read_text() != manifest:
        installed.write_text(manifest)
        run(
            [tools[1], "install", "--no-audit", "--no-fund", "--cache", str(NODE_PREFIX / "cache")],
            NODE_PREFIX,
        )
    return NODE_PREFIX / "node_modules"


def test_the_typescript_client_lists_pages_filters_reads_writes_and_reads_a_problem(
    server: ThreadedServer, token: str, document: Path, tmp_path: Path, node_modules: Path
) -> None:
    tools = node_tools()
    assert tools is not None
    bin_dir = node_modules / ".bin"
    run([str(bin_dir / "openapi-typescript"), str(document), "-o", "schema.d.ts"], tmp_path)
    shutil.copy(CLIENTS / "typescript_client.ts", tmp_path / "client.ts")
    # Type-checks the script against the generated types, then compiles it.
    run(
        [str(bin_dir / "tsc"), "--strict", "--target", "es2022", "--lib", "es2022,dom",
         "--module", "nodenext", "--moduleResolution", "nodenext",
         "--outDir", "out", "client.ts"],
        tmp_path,
    )  # fmt: skip
    printed = run([tools[0], str(tmp_path / "out" / "client.js"), server.url, token], tmp_path)
    assert printed == "typescript client: ok\n"
