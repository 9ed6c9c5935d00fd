"""How bench.big_pages' client gets N films, on one keep-alive HTTP/1.1 connection
(``Accept-Encoding: identity``: the bytes counted are the body's), every read bounded
by one deadline (past it :class:`TimedOut`): :func:`walk_pages` follows each page's
``next`` link, :func:`export_rows` reads the NDJSON export until its N-th line and
hangs up, :func:`one_page` asks for a page of N. ``seconds`` runs from the first
request to the last byte needed."""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson

READ_BYTES = 1 << 20
TRAILER = b'{"_trailer"'


class TimedOut(Exception):
    """The time bound passed before the films were read."""


class ServerGone(Exception):
    """The server closed or refused the connection, or answered something else."""


@dataclass(frozen=True)
class Fetched:
    """What the client got: films, body bytes, requests made, and how long it took."""

    films: int
    bytes: int
    requests: int
    seconds: float


class Client:
    """One keep-alive connection to ``127.0.0.1:port``, every read bounded by ``deadline``
    (a ``time.monotonic()`` value)."""

    def __init__(self, port: int, deadline: float) -> None:
        self.deadline = deadline
        self.requests = 0
        # Its timeout is set before each blocking call (_bounded), from the deadline.
        self._connection = http.client.HTTPConnection("127.0.0.1", port)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._connection.close()

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimedOut
        return left

    def _bounded(self) -> None:
        """Give the socket what is left of the time bound before each blocking read."""
        left = self._left()
        self._connection.timeout = left
        if self._connection.sock is not None:
            self._connection.sock.settimeout(left)

    def get(self, path: str) -> http.client.HTTPResponse:
        """Send a GET, return the response once its headers are in (200 only)."""
        self._bounded()
        try:
            self._connection.request(
                "GET", path, headers={"Host": "localhost", "Accept-Encoding": "identity"}
            )
            self._bounded()
            response = self._connection.getresponse()
        except TimeoutError:
            raise TimedOut from None
        except (OSError, http.client.HTTPException) as error:
            raise ServerGone(f"GET {path}: {error!r}") from error
        self.requests += 1
        if response.status != 200:
            raise ServerGone(f"GET {path} answered {response.status}: {response.read(300)!r}")
        return response

    def read(self, response: http.client.HTTPResponse) -> bytes:
        """Up to READ_BYTES of the body as they arrive; b"" at its end."""
        self._bounded()
        try:
            return response.read1(READ_BYTES)
        except TimeoutError:
            raise TimedOut from None
        except (OSError, http.client.HTTPException) as error:
            raise ServerGone(f"reading the body: {error!r}") from error

    def body(self, path: str) -> bytes:
        """The whole body of a GET."""
        response = self.get(path)
        parts = []
        while chunk := self.read(response):
            parts.append(chunk)
        # read1() leaves a Content-Length response open at its end; read() marks it
        # done, so the connection can carry the next request.
        response.read()
        return b"".join(parts)


def walk_pages(client: Client, first: str, films: int) -> Fetched:
    """Follow ``next`` from ``first`` (a list path with its ``limit``) until ``films``
    films have come or the list ends. Bytes are the whole bodies of the pages read."""
    started = time.monotonic()
    path, got, size = first, 0, 0
    list_path = urlsplit(first).path
    while got < films:
        body = client.body(path)
        page = orjson.loads(body)
        size += len(body)
        got += min(len(page["items"]), films - got)
        link = page["next"]
        if not link:
            break
        # Our servers write links as a query ("?cursor=..."); keep a path if one is given.
        path = list_path + link if link.startswith("?") else link
    return Fetched(got, size, client.requests, time.monotonic() - started)


def export_rows(client: Client, path: str, films: int) -> Fetched:
    """Read an NDJSON export until its ``films``-th line, then hang up. Bytes are the
    body up to and including that line's newline."""
    started = time.monotonic()
    response = client.get(path)
    lines = size = 0
    tail = b""
    while lines < films:
        chunk = client.read(response)
        if not chunk:  # the export ended first: the catalogue is smaller than asked
            last_line = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
            lines -= last_line.startswith(TRAILER)  # the completion mark is no film
            break
        wanted = films - lines
        newlines = chunk.count(b"\n")
        if newlines >= wanted:
            cut = -1
            for _ in range(wanted):
                cut = chunk.index(b"\n", cut + 1)
            size += cut + 1
            lines = films
            break
        size += len(chunk)
        lines += newlines
        tail = (tail + chunk)[-256:]  # enough to hold the trailer line
    seconds = time.monotonic() - started
    client.close()  # mid-stream: the server sees a client that left, and stops
    return Fetched(lines, size, client.requests, seconds)


def one_page(client: Client, path: str, films: int) -> Fetched:
    """One GET of ``path?limit=films``, read whole; the films are counted afterwards in
    its ``results`` (DRF's pagination) or ``items`` (ours)."""
    started = time.monotonic()
    body = client.body(f"{path}?limit={films}")
    seconds = time.monotonic() - started
    page = orjson.loads(body)
    items = page["results"] if "results" in page else page["items"]
    return Fetched(len(items), len(body), client.requests, seconds)
