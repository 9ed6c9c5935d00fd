"""HTTP semantics of the API's representations, in one place for every server.

What a response's validator is (its ``ETag``), how ``If-None-Match`` and
``If-Match`` are evaluated against it, and the caching headers (``Cache-Control``,
``Vary``) that go with a read or a write. aioapi's handlers and cache, the Django
comparison views and bench's raw-pool ceiling ask this module; services and
selectors know nothing of HTTP. It imports neither Django nor aiohttp: each
server turns what it answers into its own response object.

An ETag is strong: the digest of the exact bytes served. A representation of a
resource the API writes (a film) also names the version of the row it shows
(``movies.models.row_version``) in front of the digest, ``"<version>-<digest>"``,
so a write compares ``If-Match`` with the version its locked row carries,
without rendering the film again to hash it.
"""

from __future__ import annotations

import hashlib
from typing import Final

from movies.headers import SECURITY_HEADERS

JSON_CONTENT_TYPE: Final = "application/json"
# What no cache may keep: probes, written answers, exports, event streams, outage pages.
NO_STORE: Final = "no-store"
# Django's API_CACHE_CONTROL default, which aioapi's settings copy: caches may keep an
# answer but must revalidate it (a conditional GET, a 304) before each reuse.
REVALIDATE: Final = "public, max-age=0, must-revalidate"


class Representation(bytes):
    """A body, and the version of the resource it shows (``None``: not versioned).

    Bytes, so it goes wherever a body goes; :func:`etag` reads the version.
    """

    version: int | None = None

    @classmethod
    def of(cls, body: bytes, version: int) -> Representation:
        representation = cls(body)
        representation.version = version
        return representation


def etag(body: bytes) -> str:
    """The strong validator of ``body``: its digest, after its version if it has one."""
    digest = hashlib.blake2b(body, digest_size=16).hexdigest()
    version = body.version if isinstance(body, Representation) else None
    return f'"{digest}"' if version is None else f'"{version:x}-{digest}"'


def if_match_versions(if_match: str | None) -> frozenset[int] | None:
    """The versions an ``If-Match`` accepts; ``None`` when it sets no condition.

    Absent, empty (it lists no tag at all) or ``*`` (any current version: an
    unknown resource is a 404 anyway) set none. A tag this API did not write
    for a versioned resource names no version, so a list of only such tags
    accepts none (a 412).

    RFC 9110 asks for the strong comparison here, where a weak tag never matches.
    We issue only strong tags; a ``W/`` on one was added on the way, by nginx (or
    any gzipping proxy) saying it compressed those same bytes. The version still
    names exactly that state of the row, so accepting it keeps what If-Match is
    for (no lost update) and lets a client that read through the shipped nginx
    with gzip write back.
    """
    if if_match is None or not if_match.strip() or if_match.strip() == "*":
        return None
    versions: set[int] = set()
    for listed in if_match.split(","):
        tag = listed.strip().removeprefix("W/")
        version, dash, digest = tag.strip('"').partition("-")
        if dash and digest and tag.startswith('"') and tag.endswith('"'):
            try:
                versions.add(int(version, 16))
            except ValueError:
                continue
    return frozenset(versions)


def read_answer(
    tag: str, if_none_match: str | None, cache_control: str
) -> tuple[int, dict[str, str]]:
    """The status and headers of a cacheable read: 304 when ``If-None-Match`` holds
    ``tag`` (RFC 9110: weak comparison against a list of tags, or ``*``), else 200."""
    headers = {**SECURITY_HEADERS, "ETag": tag, "Cache-Control": cache_control}
    if not if_none_match:
        return 200, headers
    if if_none_match.strip() == "*" or any(
        listed.strip().removeprefix("W/") == tag for listed in if_none_match.split(",")
    ):
        return 304, headers
    return 200, headers


def written_headers(tag: str) -> dict[str, str]:
    """The headers of a write's answer: the ETag a GET would give, so a client can send
    it straight back as ``If-Match``; no cache keeps it."""
    return {**SECURITY_HEADERS, "ETag": tag, "Cache-Control": NO_STORE}


def vary_with(current: str | None, field: str) -> str:
    """``Vary`` with ``field`` added to what it already names (``*`` covers it)."""
    if current is None or not current.strip():
        return field
    names = {name.strip().lower() for name in current.split(",")}
    if "*" in names or field.lower() in names:
        return current
    return f"{current}, {field}"
