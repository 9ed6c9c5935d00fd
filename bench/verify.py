"""Verification before load: every server must give the same status and bytes.

The first server verified in a condition sets the reference answers of each
scenario; every later server must match them exactly, or the bench stops. A
server that renders the films its own way (drf: its own JSON) is checked by
order instead: for every request, the same status and the same films (id and
title) in the same order as the reference's answer.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson

from bench.servers import Verification
from bench.workload import HttpRequest

CONTEXT_BYTES = 60
FETCH_TIMEOUT_SECONDS = 30.0


class VerificationError(RuntimeError):
    """Servers disagree, or a server answers with a status the scenario does not expect."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    etag: str | None = None


def fetch(port: int, requests: Sequence[HttpRequest], *, parallel: int = 8) -> list[Answer]:
    """Send ``requests`` to 127.0.0.1:``port``, ``parallel`` keep-alive connections at
    once (so verifying 500 details under simulated latency takes seconds); answers
    come back in request order."""
    chunks = [list(enumerate(requests))[i::parallel] for i in range(parallel)]
    answers: dict[int, Answer] = {}
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for part in pool.map(lambda chunk: _fetch_chunk(port, chunk), chunks):
            answers.update(part)
    return [answers[i] for i in range(len(requests))]


def _fetch_chunk(port: int, chunk: list[tuple[int, HttpRequest]]) -> dict[int, Answer]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=FETCH_TIMEOUT_SECONDS)
    answers = {}
    try:
        for index, request in chunk:
            headers = dict(request.headers)
            conn.request(request.method, request.path, body=request.body, headers=headers)
            reply = conn.getresponse()
            answers[index] = Answer(reply.status, reply.read(), reply.getheader("ETag"))
    finally:
        conn.close()
    return answers


def require(
    port: int, requests: Sequence[HttpRequest], expect: Sequence[int] = (200,)
) -> list[Answer]:
    """The answers of ``requests``; a status not in ``expect`` stops the command."""
    answers = fetch(port, requests)
    problems = status_problems(f"127.0.0.1:{port}", requests, answers, expect)
    if problems:
        raise VerificationError(_shown(problems))
    return answers


def first_difference(a: bytes, b: bytes) -> int:
    """Offset of the first differing byte (the shorter length if one is a prefix)."""
    for offset, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return offset
    return min(len(a), len(b))


def _excerpt(body: bytes, offset: int) -> str:
    start = max(0, offset - CONTEXT_BYTES)
    return body[start : offset + CONTEXT_BYTES].decode("utf-8", "replace")


def status_problems(
    server: str, requests: Sequence[HttpRequest], answers: Sequence[Answer], expect: Sequence[int]
) -> list[str]:
    """Answers whose status the scenario does not expect."""
    return [
        f"{server}: {request.method} {request.path} answered {answer.status}, "
        f"expected {' or '.join(map(str, expect))}: {answer.body[:200]!r}"
        for request, answer in zip(requests, answers, strict=True)
        if answer.status not in expect
    ]


Served = tuple[str, Sequence[HttpRequest], Sequence[Answer]]  # (server, requests, answers)
# One answer against the reference's: what differs, or None. Its first argument
# names the two requests, the next two the servers.
Comparison = Callable[[str, str, str, Answer, Answer], str | None]


def _compare(reference: Served, candidate: Served, compare: Comparison) -> list[str]:
    """Pair the two servers' answers request by request and ``compare`` each pair."""
    ref_server, ref_requests, ref_answers = reference
    server, requests, answers = candidate
    if len(ref_answers) != len(answers):
        return [f"{ref_server} got {len(ref_answers)} requests, {server} {len(answers)}"]
    problems = []
    rows = zip(ref_requests, ref_answers, requests, answers, strict=True)
    for ref_request, ref, request, answer in rows:
        where = f"{ref_server} {ref_request.path} vs {server} {request.path}"
        if ref.status != answer.status:
            problems.append(f"{where}: status {ref.status} vs {answer.status}")
        elif (problem := compare(where, ref_server, server, ref, answer)) is not None:
            problems.append(problem)
    return problems


def _same_bytes(
    where: str, ref_server: str, server: str, ref: Answer, answer: Answer
) -> str | None:
    if ref.body != answer.body:
        at = first_difference(ref.body, answer.body)
        return (
            f"{where}: bodies differ at byte {at} "
            f"({len(ref.body)} vs {len(answer.body)} bytes)\n"
            f"  {ref_server}: ...{_excerpt(ref.body, at)}...\n"
            f"  {server}: ...{_excerpt(answer.body, at)}..."
        )
    if ref.etag != answer.etag:
        return f"{where}: ETag {ref.etag} vs {answer.etag}"
    return None


def films(body: bytes) -> list[tuple[Any, Any]]:
    """(id, title) of every film of a body: a page's ``items`` (ours) or ``results``
    (DRF's), or the one film of a detail."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(document, dict):
        return []
    page = document.get("items", document.get("results"))
    entries = page if isinstance(page, list) else [document]
    return [(e.get("id"), e.get("title")) for e in entries if isinstance(e, dict)]


def _same_films(
    where: str, _ref_server: str, _server: str, ref: Answer, answer: Answer
) -> str | None:
    expected, got = films(ref.body), films(answer.body)
    if expected and expected == got:
        return None
    pairs = enumerate(zip(expected, got, strict=False))
    at = next((i for i, (x, y) in pairs if x != y), min(len(expected), len(got)))
    return (
        f"{where}: films differ from position {at} ({len(expected)} vs {len(got)} films): "
        f"{expected[at : at + 3]} vs {got[at : at + 3]}"
    )


class Reference:
    """The answers each scenario got from the first server verified in a condition."""

    def __init__(self) -> None:
        self._answers: dict[str, tuple[str, Sequence[HttpRequest], Sequence[Answer]]] = {}

    def check(
        self,
        scenario: str,
        server: str,
        requests: Sequence[HttpRequest],
        answers: Sequence[Answer],
        expect: Sequence[int],
        by: Verification = "bytes",
    ) -> str:
        """Record or compare; raise :class:`VerificationError` on any problem.

        ``by="order"`` compares the films only, and needs a reference recorded
        before (by a server checked by bytes); it never becomes the reference.
        Returns what was checked, for the log and results.json.
        """
        problems = status_problems(server, requests, answers, expect)
        if by == "order":
            return self._check_order(scenario, server, requests, answers, problems)
        if not problems and scenario in self._answers:
            problems = _compare(self._answers[scenario], (server, requests, answers), _same_bytes)
        if problems:
            raise VerificationError(f"scenario {scenario}: {_shown(problems)}")
        if scenario in self._answers:
            return f"{len(answers)} identical to {self._answers[scenario][0]}"
        self._answers[scenario] = (server, requests, answers)
        return f"{len(answers)} answers recorded as the reference"

    def _check_order(
        self,
        scenario: str,
        server: str,
        requests: Sequence[HttpRequest],
        answers: Sequence[Answer],
        problems: list[str],
    ) -> str:
        if scenario not in self._answers:
            raise VerificationError(
                f"scenario {scenario}: {server} is verified by the order of its films "
                "against a server checked by bytes, and none was verified before it in "
                "this condition: run it with django, django-asgi or aioapi"
            )
        reference = self._answers[scenario]
        problems = problems or _compare(reference, (server, requests, answers), _same_films)
        if problems:
            raise VerificationError(f"scenario {scenario}: {_shown(problems)}")
        return f"{len(answers)} with the films of {reference[0]}, in the same order"


def _shown(problems: list[str]) -> str:
    more = f"\n... and {len(problems) - 5} more" if len(problems) > 5 else ""
    return "\n".join(problems[:5]) + more
