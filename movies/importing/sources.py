"""Reading a JSON array of films from a file (plain or gzip) or an http(s) URL."""

from __future__ import annotations

import gzip
import io
import re
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import IO, Any

import orjson

_URL = re.compile(r"https?://", re.IGNORECASE)
_GZIP_MAGIC = b"\x1f\x8b"
_JSON_TYPES: dict[type, str] = {
    dict: "an object",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


class SourceError(Exception):
    """The source cannot be read or is not a JSON array; the message says why."""


def _open(source: str, timeout: float) -> IO[bytes]:
    if _URL.match(source):
        request = urllib.request.Request(source, headers={"User-Agent": "mymoviedb-importer"})
        try:
            response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http(s) only)
        except urllib.error.HTTPError as exc:
            raise SourceError(f"cannot fetch {source}: HTTP {exc.code} {exc.reason}") from exc
        except urllib.error.URLError as exc:
            raise SourceError(f"cannot fetch {source}: {exc.reason}") from exc
        except TimeoutError as exc:
            raise SourceError(f"cannot fetch {source}: timed out after {timeout:g} s") from exc
        return response  # type: ignore[no-any-return]
    try:
        return Path(source).open("rb")
    except OSError as exc:
        raise SourceError(f"cannot read {source}: {exc.strerror or exc}") from exc


def read_source(source: str, *, timeout: float = 30.0) -> list[Any]:
    """Load the JSON array of records at ``source`` (a path or an http(s) URL).

    Gzip is recognised by its magic bytes, whatever the name or content type.
    The body is streamed through the decompressor and parsed in one go: the
    reference file is 30 MB of JSON, which is cheaper to hold than to parse
    incrementally. Raises :class:`SourceError` with a readable message.
    """
    # Peeking needs a buffer; an HTTP response is only a raw stream.
    with io.BufferedReader(_open(source, timeout)) as stream:  # type: ignore[type-var]
        try:
            compressed = stream.peek(len(_GZIP_MAGIC)).startswith(_GZIP_MAGIC)
            body = gzip.GzipFile(fileobj=stream).read() if compressed else stream.read()
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise SourceError(f"{source} is not a valid gzip file: {exc}") from exc
        except TimeoutError as exc:
            raise SourceError(f"reading {source} timed out after {timeout:g} s") from exc
        except OSError as exc:
            raise SourceError(f"cannot read {source}: {exc.strerror or exc}") from exc
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SourceError(f"{source} is not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        found = _JSON_TYPES.get(type(data), type(data).__name__)
        raise SourceError(f"{source} is not a JSON array of films (it is {found})")
    return data
