"""bench/export_bench.py's figures: the medians of each condition, the targets of
issue 6 (a million films in under 5 s, aioapi's peak RSS under 150 MB), report.md."""

from __future__ import annotations

import json
import statistics
from typing import TYPE_CHECKING, Any

from bench.scaffold import markdown_table

if TYPE_CHECKING:
    from bench.export_bench import Run

MIB = 1024 * 1024
TARGET_SECONDS = 5.0
TARGET_RSS_MB = 150.0


def summarise(runs: list[Run]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, int, str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.server, run.films, run.format, run.sort), []).append(run)
    return [
        {
            "server": server,
            "films": films,
            "format": fmt,
            "sort": sort,
            "runs": len(group),
            "ttfb_s_median": round(statistics.median(r.ttfb_s for r in group), 4),
            "total_s_best": min(r.total_s for r in group),
            "total_s_median": round(statistics.median(r.total_s for r in group), 3),
            "rows_per_s_median": round(statistics.median(r.rows_per_s for r in group)),
            "bytes": group[0].bytes,
            "peak_rss_mb_max": max(r.peak_rss_mb for r in group),
            "idle_rss_mb": group[0].idle_rss_mb,
        }
        for (server, films, fmt, sort), group in groups.items()
    ]


def targets(summary: list[dict[str, Any]]) -> dict[str, Any]:
    def row(films: int) -> dict[str, Any] | None:
        for item in summary:
            key = (item["server"], item["films"], item["format"], item["sort"])
            if key == ("aioapi", films, "ndjson", "id"):
                return item
        return None

    million, small = row(1_000_000), row(100_000)
    result: dict[str, Any] = {}
    if million is not None:
        result["aioapi_1m_ndjson_median_s"] = million["total_s_median"]
        result["aioapi_1m_ndjson_under_5_s"] = million["total_s_median"] < TARGET_SECONDS
    aioapi_peaks = [item["peak_rss_mb_max"] for item in summary if item["server"] == "aioapi"]
    if aioapi_peaks:
        result["aioapi_peak_rss_mb"] = max(aioapi_peaks)
        result["aioapi_peak_rss_under_150_mb"] = max(aioapi_peaks) < TARGET_RSS_MB
    if million is not None and small is not None:
        result["aioapi_peak_rss_mb_100k_vs_1m"] = [
            small["peak_rss_mb_max"],
            million["peak_rss_mb_max"],
        ]
    return result


def report(document: dict[str, Any]) -> str:
    """report.md: one row per condition, the targets, the machine."""
    lines = [
        "# Streaming export benchmark",
        "",
        f"Date (UTC): {document['started_utc']}  ",
        f"Command: `{document['command']}`  ",
        f"Load average at start / end: {document['load_average']['start']} / "
        f"{document['load_average']['end']}",
        "",
        *markdown_table(
            ["server", "films", "format", "sort", "TTFB (s)", "total median (s)", "best (s)",
             "rows/s", "MB", "idle RSS (MB)", "peak RSS (MB)"],
            [
                [item["server"], f"{item['films']:,}", item["format"], item["sort"],
                 f"{item['ttfb_s_median']:.3f}", f"{item['total_s_median']:.2f}",
                 f"{item['total_s_best']:.2f}", f"{item['rows_per_s_median']:,}",
                 f"{item['bytes'] / MIB:.0f}", f"{item['idle_rss_mb']:.0f}",
                 f"{item['peak_rss_mb_max']:.0f}"]
                for item in document["summary"]
            ],
            ("left", "right", "left", "left", *["right"] * 7),
        ),
    ]  # fmt: skip
    lines += ["Targets (aioapi, NDJSON, id order):", ""]
    lines += [f"- {name}: {value}" for name, value in document["targets"].items()]
    # Results before the shared facts (bench/scaffold.py) recorded an "environment".
    facts = document.get("facts", document.get("environment"))
    lines += ["", f"Machine and software: `{json.dumps(facts)}`", ""]
    return "\n".join(lines)
