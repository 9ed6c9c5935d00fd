"""Verification before load: the first server verified in a condition sets each
scenario's reference answers; every later one must give the same statuses, bytes and
ETags, or the bench stops. A server that renders films its own way (drf) is checked by
order instead: the same status and the same films (id, title) in the same order."""

from __future__ import annotations

import http.client
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import orjson

from bench.servers import Verification
from bench.workload import HttpRequest

CONTEXT_BYTES = 60


class VerificationError(RuntimeError):
    """Servers disagree, or a server answers with a status the scenario does not expect."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    etag: str | None = None


def fetch(port: int, requests: Sequence[HttpRequest], *, parallel: int = 8) -> list[Answer]:
    """``requests`` on ``parallel`` keep-alive connections; answers in request order."""

    def chunk(part: list[tuple[int, HttpRequest]]) -> dict[int, Answer]:
        answers = {}
        with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=30)) as conn:
            for index, r in part:
                conn.request(r.method, r.path, body=r.body, headers=dict(r.headers))
                reply = conn.getresponse()
                answers[index] = Answer(reply.status, reply.read(), reply.getheader("ETag"))
        return answers

    found: dict[int, Answer] = {}
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        parts = [list(enumerate(requests))[i::parallel] for i in range(parallel)]
        for answers in pool.map(chunk, parts):
            found.update(answers)
    return [found[i] for i in range(len(requests))]


def first_difference(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Offset of the first difference (the shorter length if one is a prefix)."""
    pairs = enumerate(zip(a, b, strict=False))
    return next((i for i, (x, y) in pairs if x != y), min(len(a), len(b)))


def status_problems(server: str, requests: Sequence[HttpRequest], answers: Sequence[Answer],
                    expect: Sequence[int]) -> list[str]:  # fmt: skip
    """Answers whose status the scenario does not expect."""
    return [
        f"{server}: {request.method} {request.path} answered {answer.status}, "
        f"expected {' or '.join(map(str, expect))}: {answer.body[:200]!r}"
        for request, answer in zip(requests, answers, strict=True)
        if answer.status not in expect
    ]


def _same_bytes(ref: Answer, answer: Answer, servers: tuple[str, str]) -> str | None:
    if ref.body != answer.body:
        at = first_difference(ref.body, answer.body)
        start = max(0, at - CONTEXT_BYTES)
        shown = [b[start : at + CONTEXT_BYTES].decode("utf-8", "replace")
                 for b in (ref.body, answer.body)]  # fmt: skip
        return (f"bodies differ at byte {at} ({len(ref.body)} vs {len(answer.body)} bytes)\n"
                f"  {servers[0]}: ...{shown[0]}...\n  {servers[1]}: ...{shown[1]}...")  # fmt: skip
    return None if ref.etag == answer.etag else f"ETag {ref.etag} vs {answer.etag}"


def films(body: bytes) -> list[tuple[Any, Any]]:
    """(id, title) of every film of a body: a page's ``items`` (ours) or ``results``
    (DRF's), or the one film of a detail."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    if not isinstance(document, dict):
        return []
    page = document.get("items", document.get("results"))
    entries = page if isinstance(page, list) else [document]
    return [(e.get("id"), e.get("title")) for e in entries if isinstance(e, dict)]


def _same_films(ref: Answer, answer: Answer, servers: tuple[str, str]) -> str | None:
    expected, got = films(ref.body), films(answer.body)
    if expected and expected == got:
        return None
    at = first_difference(expected, got)
    return (f"films differ from position {at} ({len(expected)} vs {len(got)} films): "
            f"{expected[at : at + 3]} vs {got[at : at + 3]}")  # fmt: skip


Served = tuple[str, Sequence[HttpRequest], Sequence[Answer]]  # (server, requests, answers)


def _compare(reference: Served, candidate: Served, by: Verification) -> list[str]:
    """Pair the two servers' answers request by request and compare each pair."""
    (ref_server, ref_requests, ref_answers), (server, requests, answers) = reference, candidate
    if len(ref_answers) != len(answers):
        return [f"{ref_server} got {len(ref_answers)} requests, {server} {len(answers)}"]
    same = _same_films if by == "order" else _same_bytes
    problems = []
    for ref_request, ref, request, answer in zip(ref_requests, ref_answers, requests, answers,
                                                 strict=True):  # fmt: skip
        where = f"{ref_server} {ref_request.path} vs {server} {request.path}"
        if ref.status != answer.status:
            problems.append(f"{where}: status {ref.status} vs {answer.status}")
        elif (problem := same(ref, answer, (ref_server, server))) is not None:
            problems.append(f"{where}: {problem}")
    return problems


class Reference:
    """The answers each scenario got from the first server verified in a condition."""

    def __init__(self) -> None:
        self._answers: dict[str, Served] = {}

    def check(self, scenario: str, server: str, requests: Sequence[HttpRequest],
              answers: Sequence[Answer], expect: Sequence[int],
              by: Verification = "bytes") -> str:  # fmt: skip
        """Record or compare; raise :class:`VerificationError` on any problem. ``by="order"``
        compares the films only against a reference recorded before (by a server checked
        by bytes), and never becomes the reference. Returns what was checked."""
        problems = status_problems(server, requests, answers, expect)
        reference = self._answers.get(scenario)
        if by == "order" and reference is None:
            raise VerificationError(
                f"scenario {scenario}: {server} is verified by the order of its films "
                "against a server checked by bytes, and none was verified before it in "
                "this condition: run it with django, django-asgi or aioapi"
            )
        if not problems and reference is not None:
            problems = _compare(reference, (server, requests, answers), by)
        if problems:
            raise VerificationError(f"scenario {scenario}: {_shown(problems)}")
        if reference is None:
            self._answers[scenario] = (server, requests, answers)
            return f"{len(answers)} answers recorded as the reference"
        if by == "order":
            return f"{len(answers)} with the films of {reference[0]}, in the same order"
        return f"{len(answers)} identical to {reference[0]}"


def _shown(problems: list[str]) -> str:
    more = f"\n... and {len(problems) - 5} more" if len(problems) > 5 else ""
    return "\n".join(problems[:5]) + more
