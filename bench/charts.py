"""PNG charts of a results document: one per scenario, requests/s and p99 latency
against connections, both servers (and the ceiling) on each plot, a column per
condition; with rounds, the medians of the rounds. matplotlib's object API writes
files without any GUI backend."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from bench.plan import RAW_POOL
from bench.summary import combined


def draw(document: Mapping[str, Any], outdir: Path) -> list[str]:
    """Write ``<scenario>.png`` for each scenario of the runs; return the file names."""
    names = []
    medians = combined(document["runs"])
    for scenario in dict.fromkeys(r["scenario"] for r in medians):
        runs = [r for r in medians if r["scenario"] == scenario]
        conditions = list(dict.fromkeys(r["condition"] for r in runs))
        figure = Figure(figsize=(4.2 * len(conditions), 6.4))
        axes = figure.subplots(2, len(conditions), squeeze=False)
        for column, condition in enumerate(conditions):
            rps, p99 = axes[0][column], axes[1][column]
            counts = sorted({r["connections"] for r in runs if r["condition"] == condition})
            for server in dict.fromkeys(r["server"] for r in runs):
                points = sorted(
                    (r["connections"], r["requests_per_s"], r["latency"]["p99"])
                    for r in runs
                    if r["condition"] == condition and r["server"] == server
                )
                if points:
                    xs = [p[0] for p in points]
                    style = "--" if server == RAW_POOL else "-"
                    rps.plot(xs, [p[1] for p in points], style, marker="o", label=server)
                    p99.plot(xs, [p[2] for p in points], style, marker="o", label=server)
            rps.set_title(f"{scenario} · {condition}", fontsize=10)
            rps.set_ylabel("requests/s")
            rps.set_ylim(bottom=0)
            p99.set_ylabel("p99 latency (ms, log)")
            p99.set_yscale("log")
            for plot in (rps, p99):
                plot.set_xscale("log")
                plot.minorticks_off()
                plot.set_xticks(counts, labels=[str(count) for count in counts])
                plot.set_xlabel("connections")
                plot.grid(True, alpha=0.3)
                plot.legend(fontsize=8)
        figure.tight_layout()
        name = f"{scenario}.png"
        figure.savefig(outdir / name, dpi=110)
        names.append(name)
    return names
