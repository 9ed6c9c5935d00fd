"""report.md of ``python -m bench.admin``: each page's timings against the target."""

from __future__ import annotations

from typing import Any

from bench.admin import TARGET_MEDIAN_MS, TARGET_P95_MS
from bench.scaffold import markdown_table


def within(page: dict[str, Any]) -> str:
    return "yes" if page["within_target"] else "**no**"


def report(document: dict[str, Any]) -> str:
    lines = [
        f"# Curator admin at {document['catalogue']['movies']:,} films ({document['date']})",
        "",
        f"Command: `{document['command']}`",
        "",
        f"Target: median ≤ {TARGET_MEDIAN_MS:.0f} ms and p95 ≤ {TARGET_P95_MS:.0f} ms per page, "
        "server-side (Django's whole stack in one process, no network), "
        f"{document['rounds']} rounds after {document['warmup']} warm-up.",
        "",
        *markdown_table(
            ("page", "median ms", "p95 ms", "max ms", "queries", "SQL ms", "within"),
            (
                (
                    page["name"], f"{page['median_ms']:.1f}", f"{page['p95_ms']:.1f}",
                    f"{page['max_ms']:.1f}", page["queries"],
                    f"{page['sql_milliseconds']:.1f}", within(page),
                )
                for page in document["pages"]
            ),
            align=("left", "right", "right", "right", "right", "right", "left"),
        ),
    ]  # fmt: skip
    catalogue = ", ".join(f"{k} {v:,}" for k, v in document["catalogue"].items())
    lines += [
        f"Catalogue: {catalogue}. PostgreSQL: {document['versions']['postgresql']}.",
        f"Machine: {document['machine']['cpu_model']}, {document['machine']['cores']} cores, "
        f"load at start {document['machine']['load_average_at_start']}.",
        "",
        "Paths: "
        + "; ".join(f"{p['name']}: `{p['method']} {p['path']}`" for p in document["pages"]),
        "",
    ]
    return "\n".join(lines)
