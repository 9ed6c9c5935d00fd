"""movies.conditional: validators, If-None-Match and If-Match, and the mapping of
services' refusals to problems (movies.problems.problem_of)."""

from __future__ import annotations

import hashlib

import pytest

from movies.conditional import (
    Representation,
    etag,
    if_match_versions,
    read_answer,
    vary_with,
    written_headers,
)
from movies.errors import Invalid, NotFound, VersionConflict
from movies.problems import problem_of

BODY = b'{"id":1}'
DIGEST = hashlib.blake2b(BODY, digest_size=16).hexdigest()


def test_an_etag_is_the_digest_of_the_bytes_and_names_a_version_when_given() -> None:
    assert etag(BODY) == f'"{DIGEST}"'
    assert etag(Representation.of(BODY, 255)) == f'"ff-{DIGEST}"'
    assert etag(Representation.of(BODY, 255)) != etag(Representation.of(BODY, 256))
    assert Representation.of(BODY, 1) == BODY  # the bytes served are the body's


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        ("", False),
        ("*", True),
        ('"abc"', True),
        ('W/"abc"', True),  # weak comparison
        ('"x", "abc"', True),
        ('"x"', False),
        ('"ab"', False),
    ],
)
def test_if_none_match(header: str | None, expected: bool) -> None:
    status, headers = read_answer('"abc"', header, "no-cache")
    assert status == (304 if expected else 200)
    assert headers["ETag"] == '"abc"' and headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("*", None),
        (f'"ff-{DIGEST}"', frozenset({255})),
        (f'W/"ff-{DIGEST}"', frozenset({255})),  # weakened by a gzipping proxy
        (f'"x", "10-{DIGEST}", "ff-{DIGEST}"', frozenset({16, 255})),
        (f'"{DIGEST}"', frozenset()),  # a tag without a version: accepts none
        (f'"zz-{DIGEST}"', frozenset()),
        (f"ff-{DIGEST}", frozenset()),  # unquoted: not a tag
        ('"ff-"', frozenset()),
    ],
)
def test_if_match_names_versions(header: str | None, expected: frozenset[int] | None) -> None:
    assert if_match_versions(header) == expected


def test_headers_of_reads_and_writes() -> None:
    _, read = read_answer('"t"', None, "public, max-age=0, must-revalidate")
    assert read["ETag"] == '"t"' and read["Cache-Control"].startswith("public")
    assert read["X-Content-Type-Options"] == "nosniff"
    assert written_headers('"t"')["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("current", "expected"),
    [(None, "Origin"), ("", "Origin"), ("Accept-Encoding", "Accept-Encoding, Origin"),
     ("origin", "origin"), ("*", "*")],
)  # fmt: skip
def test_vary_with(current: str | None, expected: str) -> None:
    assert vary_with(current, "Origin") == expected


def test_each_refusal_of_a_service_is_one_problem() -> None:
    assert problem_of(NotFound("Movie")).as_dict() == {
        "type": "about:blank", "title": "Not Found", "status": 404,
        "detail": "Movie does not exist.",
    }  # fmt: skip
    conflict = problem_of(VersionConflict("The film has changed since it was read"))
    assert conflict.status == 412
    assert conflict.detail == (
        "The film has changed since it was read: If-Match does not match its current "
        "ETag. Read it again, then retry."
    )
    errors = [{"name": "genres.0", "reason": "no genre has the slug 'x'"}]
    invalid = problem_of(Invalid("Unknown genre(s): x.", errors=errors))
    assert (invalid.status, invalid.errors) == (422, errors)
