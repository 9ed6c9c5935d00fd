"""The exact requests of each scenario on each server, and the files wrk's Lua reads:
the driver verifies these requests on every server and hands the same ones to wrk, so
what is loaded is what was checked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import orjson

from bench.plan import SCENARIOS
from bench.servers import ServerSpec

LIST_QUERIES: dict[str, dict[str, str | int]] = {
    "list-10": {"limit": 10}, "list-100": {"limit": 100},
    "list-filtered": {"genre": "drama", "year_min": 1990, "year_max": 2010, "sort": "-year",
                      "limit": 20},
}  # fmt: skip
PEOPLE_QUERY: dict[str, str | int] = {"limit": 20}
# The search scenario: common words (hundreds of films each at 36k), in the API's default
# order for a search (relevance, from movies.search's ranked postings).
SEARCH_WORDS = ("love", "war", "night", "girl", "city", "man", "death", "family")
WRITE_EVERY = 20


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None


@dataclass(frozen=True)
class Inputs:  # what the driver sampled from the database for this bench run
    detail_ids: tuple[int, ...]
    write_ids: tuple[int, ...]
    token: str | None = None
    busiest_ids: tuple[int, ...] = ()  # a sample of the 1 % with the most credits


@dataclass(frozen=True)
class Workload:  # one scenario on one server: wrk's URL, what to verify, the Lua's env
    url_path: str
    reads: tuple[HttpRequest, ...]
    writes: tuple[HttpRequest, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


def list_path(spec: ServerSpec, query: Mapping[str, str | int]) -> str:
    return f"{spec.list_path}?{urlencode(query)}"


def detail_paths(spec: ServerSpec, ids: tuple[int, ...]) -> list[str]:
    if spec.detail_path is None:
        raise ValueError(f"{spec.name} serves no film detail")
    return [spec.detail_path.format(id=movie_id) for movie_id in ids]


def build(
    scenario: str, spec: ServerSpec, inputs: Inputs, workdir: Path, etag: str | None = None
) -> Workload:
    """The workload of ``scenario`` on ``spec``; writes the Lua input files to ``workdir``."""
    expect = ",".join(map(str, SCENARIOS[scenario].expect))
    env = {"BENCH_EXPECT": expect}
    prefix = workdir / f"{spec.name}-{scenario}"
    if scenario == "people" and spec.people_path is None:
        raise ValueError(f"{spec.name} serves no people list")
    if path := {**{name: list_path(spec, query) for name, query in LIST_QUERIES.items()},
                "people": f"{spec.people_path}?{urlencode(PEOPLE_QUERY)}",
                "constant": spec.ready_path}.get(scenario):  # fmt: skip
        return Workload(path, (HttpRequest("GET", path),), env=env)
    if scenario == "conditional":
        if etag is None:
            raise ValueError("the conditional scenario needs the ETag of list 10")
        path = list_path(spec, LIST_QUERIES["list-10"])
        request = HttpRequest("GET", path, (("If-None-Match", etag),))
        return Workload(path, (request,), env={**env, "BENCH_ETAG": etag})
    if scenario in ("detail", "detail-busiest", "search"):
        if scenario != "search":
            ids = inputs.detail_ids if scenario == "detail" else inputs.busiest_ids
            paths = detail_paths(spec, ids)
        else:
            paths = [list_path(spec, {"q": word, "limit": 10}) for word in SEARCH_WORDS]
        env["BENCH_PATHS"] = _write_lines(prefix.with_suffix(".paths"), paths)
        return Workload("/", tuple(HttpRequest("GET", p) for p in paths), env=env)
    if scenario in ("write-mix", "mixed"):
        reads = [list_path(spec, LIST_QUERIES["list-10"]), *detail_paths(spec, inputs.detail_ids)]
        if scenario == "mixed":
            reads = mixed_reads(spec, reads)
        return _write_mix(spec, inputs, prefix, env, reads)
    raise ValueError(f"unknown scenario {scenario!r}")


def mixed_reads(spec: ServerSpec, reads: list[str]) -> list[str]:
    """The soak's reads: ``reads``, then lists in every sort and filter, searches,
    people, genres, 404s and 400s (aioapi's paths)."""
    lists: list[dict[str, str | int]] = [
        {"limit": limit, "sort": f"{way}{key}", **extra}
        for limit, extra in ((10, {}), (20, {"genre": "drama"}), (50, {"offset": 200}),
                             (20, {"year_min": 1990, "year_max": 2000}))
        for key in ("title", "year", "rating", "id", "updated_at") for way in ("", "-")
    ]  # fmt: skip
    others = [
        *(list_path(spec, query) for query in lists),
        *(list_path(spec, {"q": word, "limit": 10}) for word in SEARCH_WORDS),
        "/api/people?limit=20", "/api/people?q=john&limit=10", "/api/genres",
        "/api/movies/2000000000", "/api/people/2000000000",
        *(f"/api/movies?{bad}" for bad in ("limit=0", "sort=bogus", "year=abc", "colour=red")),
    ]  # fmt: skip
    return [*reads, *others]


def _write_mix(spec: ServerSpec, inputs: Inputs, prefix: Path, env: dict[str, str],
               reads: list[str]) -> Workload:  # fmt: skip
    if inputs.token is None:
        raise ValueError("the write mix needs an API token")
    headers = (("Authorization", f"Bearer {inputs.token}"), ("Content-Type", "application/json"))
    writes = tuple(
        # A rating that depends on the film only, so reruns agree.
        HttpRequest("PATCH", path, headers, orjson.dumps({"rating": (movie_id * 37 % 100) / 10}))
        for movie_id, path in zip(
            inputs.write_ids, detail_paths(spec, inputs.write_ids), strict=True
        )
    )
    lines = [f"{w.path}\t{(w.body or b'').decode()}" for w in writes]
    env = {**env, "BENCH_PATHS": _write_lines(prefix.with_suffix(".paths"), reads),
           "BENCH_WRITES": _write_lines(prefix.with_suffix(".writes"), lines),
           "BENCH_TOKEN": inputs.token, "BENCH_WRITE_EVERY": str(WRITE_EVERY)}  # fmt: skip
    return Workload("/", tuple(HttpRequest("GET", p) for p in reads), writes, env)


def _write_lines(path: Path, lines: list[str]) -> str:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return str(path)
