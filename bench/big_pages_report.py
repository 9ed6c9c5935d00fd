"""report.md of ``python -m bench.big_pages``: the talk's table, ours beside theirs.

Writing is one function, :func:`write`, so it can move to bench's shared results
layer without touching the measurement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.big_pages_run import MIB, OK
from bench.headline import Column, table
from bench.scaffold import fmt, write_results

# Published figures, not measured here: kept apart from ours and labelled as theirs.
TALK_FIGURES = (
    ("Django REST framework serializer, 1,000,000 rows", "~40 s", "3.1 GB"),
    ("Django ORM `values()`, no serializer, 1,000,000 rows", "9.8 s", "not given"),
    ("a team's report after leaving DRF", "~5x faster", "not given"),
)


def size_name(films: int) -> str:
    """1k, 10k, 100k, 1M: the talk's column names."""
    for unit, suffix in ((1_000_000, "M"), (1_000, "k")):
        if films >= unit and films % unit == 0:
            return f"{films // unit}{suffix}"
    return f"{films:,}"


def cell(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return "–"
    if row["status"] != OK:
        return str(row["status"])
    return (
        f"{fmt(row['seconds'], 2)} s · {fmt(row['bytes'] / MIB, 1)} MB"
        f" · {fmt(row['peak_rss_busiest_mib'])} MB RSS"
    )


def grid(rows: Sequence[Mapping[str, Any]], sizes: Sequence[int]) -> list[str]:
    """One line per contender and path, one column per size."""
    keyed = {(r["server"], r["path"], r["size"]): r for r in rows}
    lines = list(dict.fromkeys((r["server"], r["path"]) for r in rows))
    columns: list[Column] = [
        ("contender", lambda line: str(line["server"])),
        ("path", lambda line: str(line["path"])),
    ]

    def at(films: int) -> Column:
        return size_name(films), lambda line: cell(keyed.get((*line["key"], films)))

    columns += [at(films) for films in sorted(sizes)]
    return table(columns, [{"server": s, "path": p, "key": (s, p)} for s, p in lines])


def markdown(document: Mapping[str, Any]) -> str:
    bounds = document["bounds"]
    lines = [
        "# Big pages: N films through each contender's natural path",
        "",
        f"Date (UTC): {document['started_utc']}  ",
        f"Command: `{document['command']}`  ",
        f"Catalogue: {document['catalogue']['movies']:,} films in `{document['database']}`",
        "",
        "Each cell: wall time from the first request to the last byte needed · response"
        " body bytes (MB = MiB) · peak RSS of the busiest server process (results.json"
        " also has the sum over the Gunicorn master and workers).",
        f'Bounds per size: {fmt(bounds["seconds"])} s of wall time ("timed out"), and'
        f" {fmt(bounds['memory_mib'])} MiB of RSS summed over the server's processes (the"
        ' server is killed: "over the memory bound"); after either, larger sizes are'
        " not tried.",
        "",
        *grid(document["rows"], document["sizes"]),
        "Paths:",
        "",
        *(f"- **{w['server']} {w['path']}**: {w['how']}" for w in document["ways"]),
        "",
    ]
    if document["missing"]:
        lines += [f"Not in this build: {', '.join(document['missing'])}.", ""]
    lines += [
        "## Their figures (the talk, not measured here)",
        "",
        *table(
            [
                ("what they measured", lambda r: str(r["what"])),
                ("wall time", lambda r: str(r["time"])),
                ("memory", lambda r: str(r["memory"])),
            ],
            [{"what": w, "time": t, "memory": m} for w, t, m in TALK_FIGURES],
        ),
        "Their machine, data and rows differ from ours: read them as orders of magnitude.",
        "",
        "## Servers",
        "",
        *(f"- {name}: `{' '.join(command)}`" for name, command in document["commands"].items()),
        "",
    ]
    return "\n".join(lines)


def write(directory: Path, document: Mapping[str, Any]) -> None:
    """results.json and report.md into ``directory``."""
    write_results(directory, dict(document), markdown(document))
