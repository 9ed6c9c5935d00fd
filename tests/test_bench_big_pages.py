"""bench.big_pages: the client gets exactly N films and counts their bytes, the time
and memory bounds become result rows, and the command refuses bad input.

The walkers run against real servers on the test database (Django's live server,
aiohttp's test server with aioapi), on SQLite and on PostgreSQL alike; the bounds
against small real HTTP servers started through bench.servers.ManagedServer.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench import big_pages
from bench.big_pages import (
    OK,
    OVER_MEMORY,
    SKIPPED,
    TIMED_OUT,
    Bounds,
    Client,
    Fetched,
    Way,
    export_rows,
    markdown,
    one_page,
    run_way,
    walk_pages,
)
from bench.servers import ServerSpec
from tests.api_fixtures import FILMS, ApiClient, Catalogue
from tests.ports import free_port
from tests.test_bench import squeezed

pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")
FAR = 30.0  # a deadline no test reaches unless something hangs


def later(seconds: float = FAR) -> float:
    return time.monotonic() + seconds


def through(port: int, fetch: Callable[[Client, str, int], Fetched], path: str, n: int) -> Fetched:
    """``fetch`` on a client of its own, closed afterwards."""
    with Client(port, later()) as client:
        return fetch(client, path, n)


def pages_by_hand(port: int, first: str) -> list[bytes]:
    """Every page of a list, following ``next`` with urllib: what the walker must match."""
    bodies, path = [], first
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}") as reply:
            bodies.append(reply.read())
        link = orjson.loads(bodies[-1])["next"]
        if not link:
            return bodies
        path = path.split("?")[0] + link


@pytest.mark.django_db(transaction=True)
def test_walk_follows_django_cursors_to_the_end_and_stops_at_n(
    live_server: Any, catalogue: Catalogue
) -> None:
    port = int(live_server.url.rsplit(":", 1)[1])
    bodies = pages_by_hand(port, "/movies/?limit=3")
    assert len(bodies) == 3  # 8 films, 3 a page
    assert "cursor=" in orjson.loads(bodies[0])["next"]

    with Client(port, later()) as client:
        whole = walk_pages(client, "/movies/?limit=3", 1_000)
    assert (whole.films, whole.requests, whole.bytes) == (
        len(FILMS),
        3,
        sum(map(len, bodies)),
    )
    with Client(port, later()) as client:
        part = walk_pages(client, "/movies/?limit=3", 4)
    assert (part.films, part.requests, part.bytes) == (4, 2, len(bodies[0]) + len(bodies[1]))


@pytest.mark.django_db(transaction=True)
async def test_walk_export_and_one_page_on_aioapi(api: ApiClient, catalogue: Catalogue) -> None:
    port = api.server.port
    assert port is not None
    bodies = await asyncio.to_thread(pages_by_hand, port, "/api/movies?limit=5")
    walked = await asyncio.to_thread(through, port, walk_pages, "/api/movies?limit=5", 8)
    assert (walked.films, walked.requests, walked.bytes) == (8, 2, sum(map(len, bodies)))

    export = await (await api.get("/api/movies/export")).read()
    lines = export.splitlines(keepends=True)
    assert len(lines) == len(FILMS) + 1 and lines[-1].startswith(b'{"_trailer"')
    # Asked for more films than there are: every film, the completion mark is no film.
    beyond = await asyncio.to_thread(through, port, export_rows, "/api/movies/export", 100)
    assert (beyond.films, beyond.bytes) == (len(FILMS), len(export))
    # Last: an export abandoned mid-stream holds the server's one slot a moment longer.
    first_five = await asyncio.to_thread(through, port, export_rows, "/api/movies/export", 5)
    assert (first_five.films, first_five.bytes, first_five.requests) == (
        5,
        len(b"".join(lines[:5])),
        1,
    )
    assert first_five.first_byte_s is not None and 0 < first_five.first_byte_s <= first_five.seconds

    page = await (await api.get("/api/movies?limit=6")).read()
    one = await asyncio.to_thread(through, port, one_page, "/api/movies", 6)
    assert (one.films, one.bytes, one.requests) == (6, len(page), 1)


# A page server: the files of argv[2], and /slow/<file> after 5 s.
PAGE_SERVER = textwrap.dedent(
    """
    import functools, http.server, sys, time
    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/slow"):
                time.sleep(5)
                self.path = "/page.json"
            super().do_GET()
        def log_message(self, *args):
            pass
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    handler = functools.partial(Handler, directory=sys.argv[2])
    http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler).serve_forever()
    """
)


def page_server(directory: Path) -> ServerSpec:
    (directory / "page.json").write_bytes(orjson.dumps({"items": [1, 2, 3], "next": None}))
    port = free_port()
    return ServerSpec(
        name="pages",
        title="a static page",
        argv=(sys.executable, "-c", PAGE_SERVER, str(port), str(directory)),
        env={"PATH": "/usr/bin:/bin"},
        port=port,
        list_path="/page.json",
        detail_path=None,
        ready_path="/page.json",
        workers=0,  # one process, no Gunicorn workers to wait for
    )


def run(tmp_path: Path, url: str, sizes: list[int], bounds: Bounds) -> list[dict[str, Any]]:
    spec = page_server(tmp_path)
    log = tmp_path / "server.log"
    return run_way(Way("pages", "one page", "page", url), spec, sizes, bounds, (0,), log)


def test_a_served_size_is_a_measured_row(tmp_path: Path) -> None:
    [row] = run(tmp_path, "/page.json", [3], Bounds(seconds=FAR, memory_mib=10_000))
    assert row["status"] == OK
    assert (row["films"], row["requests"], row["size"]) == (3, 1, 3)
    assert row["bytes"] == len((tmp_path / "page.json").read_bytes())
    assert 0 < row["peak_rss_busiest_mib"] <= row["peak_rss_mib"]


def test_the_memory_bound_is_a_result_and_larger_sizes_are_not_tried(tmp_path: Path) -> None:
    rows = run(tmp_path, "/page.json", [30, 3], Bounds(seconds=FAR, memory_mib=1))
    assert [(r["size"], r["status"]) for r in rows] == [
        (3, OVER_MEMORY),
        (30, f"{SKIPPED}: {OVER_MEMORY} at 3 films"),
    ]
    assert rows[0]["peak_rss_mib"] > 1


def test_the_time_bound_is_a_result(tmp_path: Path) -> None:
    started = time.monotonic()
    rows = run(tmp_path, "/slow/page.json", [3, 30], Bounds(seconds=0.5, memory_mib=10_000))
    assert [(r["size"], r["status"]) for r in rows] == [
        (3, TIMED_OUT),
        (30, f"{SKIPPED}: {TIMED_OUT} at 3 films"),
    ]
    assert rows[0]["seconds"] == 0.5
    # Warm-up (5 s: the slow path sleeps on every request) plus the bound, not the sleep twice.
    assert time.monotonic() - started < 9
    report = squeezed(markdown(document(rows)))
    assert f"| pages | one page | {TIMED_OUT} | {SKIPPED}: {TIMED_OUT} at 3 films |" in report


def document(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "facts": {"date_utc": "2026-12-06T00:00:00+00:00", "database": "test"},
        "command": "python -m bench.big_pages",
        "catalogue": {"movies": 3},
        "bounds": {"seconds": 0.5, "memory_mib": 10_000},
        "sizes": [3, 30],
        "rows": rows,
        "ways": [{"server": "pages", "path": "one page", "url": "/page.json"}],
        "commands": {"pages": ["python", "-c", "..."]},
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sizes", "ten"], "not a number of films: 'ten'"),
        (["--sizes", "1k,0"], "a size must be at least 1 film, not '0'"),
        (["--sizes", "1k,2G"], "not a number of films: '2G'"),
        (["--contenders", "django,flask"], "unknown contender(s) flask"),
        (["--time-bound", "-1"], "must be more than 0"),
    ],
)
def test_bad_input_is_a_readable_error_with_exit_status_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        big_pages.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_sizes_are_read_as_the_talk_writes_them() -> None:
    assert big_pages.size_list("1k,10k,100k,1M") == [1_000, 10_000, 100_000, 1_000_000]
    assert big_pages.size_list("1_000, 500,1000") == [500, 1_000]
