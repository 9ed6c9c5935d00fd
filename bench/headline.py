"""The list-10 headline of report.md (issue 3's comparison of Django and aioapi):
both servers' req/s, their ratio, latency, CPU and the ceilings; with rounds, the
ratio of each round's paired runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from bench.scaffold import fmt, markdown_table

Row = Mapping[str, Any]
Column = tuple[str, Callable[[Row], str]]


def table(columns: Sequence[Column], rows: Iterable[Row]) -> list[str]:
    """A Markdown table: one column per (name, cell of a row)."""
    return markdown_table(
        [name for name, _ in columns], ([cell(row) for _, cell in columns] for row in rows)
    )


def spread(value: float | None, low: float | None, high: float | None) -> str:
    """``465 (356–512)``: a median and the range of its rounds; ``465`` without rounds."""
    if value is None or low is None or high is None:
        return fmt(value)
    return f"{fmt(value)} ({fmt(low)}–{fmt(high)})"


def _rps_of(name: str) -> Callable[[Row], str]:
    return lambda h: spread(h[f"{name}_rps"], h.get(f"{name}_rps_min"), h.get(f"{name}_rps_max"))


def _round_ratio_range(h: Row) -> str:
    low, high = h.get("round_ratio_min"), h.get("round_ratio_max")
    return "–" if low is None or high is None else f"{low:.2f}–{high:.2f}"


HEADLINE: list[Column] = [
    ("condition", lambda h: h["condition"]),
    ("conn.", lambda h: str(h["connections"])),
    ("Django req/s", _rps_of("django")),
    ("aioapi req/s", _rps_of("aioapi")),
    ("aioapi/Django", lambda h: fmt(h["aioapi_over_django"], 2, "×")),
    ("Django p99 ms", lambda h: fmt(h["django_p99_ms"], 1)),
    ("aioapi p99 ms", lambda h: fmt(h["aioapi_p99_ms"], 1)),
    ("Django CPU ms/req", lambda h: fmt(h.get("django_cpu_ms_per_request"), 2)),
    ("aioapi CPU ms/req", lambda h: fmt(h.get("aioapi_cpu_ms_per_request"), 2)),
    ("raw pool req/s", lambda h: fmt(h["raw_pool_rps"])),
    ("constant req/s", lambda h: fmt(h["constant_rps"])),
    ("Django/raw", lambda h: fmt(h["django_of_raw_pool"], 2)),
    ("aioapi/raw", lambda h: fmt(h["aioapi_of_raw_pool"], 2)),
    ("Django/const.", lambda h: fmt(h["django_of_constant"], 3)),
    ("aioapi/const.", lambda h: fmt(h["aioapi_of_constant"], 3)),
]
# With rounds: the range of the ratios of each round's paired runs, after the ratio.
ROUND_RATIOS: Column = ("aioapi/Django per round", _round_ratio_range)


def headline_columns(rows: Sequence[Row]) -> list[Column]:
    if not any("round_ratios" in h for h in rows):
        return HEADLINE
    at = [name for name, _ in HEADLINE].index("aioapi/Django") + 1
    return [*HEADLINE[:at], ROUND_RATIOS, *HEADLINE[at:]]


def round_ratios(document: Mapping[str, Any]) -> list[str]:
    """One line per headline row: aioapi/Django in each round, so its stability shows."""
    rows = [h for h in document["headline"] if h.get("round_ratios")]
    if not rows:
        return []
    width = max(len(h["round_ratios"]) for h in rows)
    columns: list[Column] = [
        ("condition", lambda h: h["condition"]),
        ("conn.", lambda h: str(h["connections"])),
        ("ratio of medians", lambda h: fmt(h["aioapi_over_django"], 2, "×")),
        *((f"round {i + 1}", lambda h, i=i: _nth(h["round_ratios"], i)) for i in range(width)),
    ]
    intro = (
        "aioapi/Django req/s of each round's paired runs (the same round, both servers "
        "started afresh), next to the ratio of the medians:"
    )
    return [intro, "", *table(columns, rows)]


def _nth(values: Sequence[float], i: int) -> str:
    return fmt(values[i], 2, "×") if i < len(values) else "–"
