"""PNG charts of a results document: one per scenario, requests/s and p99 latency
against connections, every server results.json holds (and the ceiling) on each
plot, a column per condition; with rounds, the medians of the rounds. Each server
keeps one colour and marker on every chart of a run. matplotlib's object API
writes files without any GUI backend."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib import rcParams
from matplotlib.figure import Figure

from bench.plan import RAW_POOL
from bench.summary import combined

MARKERS = "osD^vPX*<>"


def styles(servers: list[str]) -> dict[str, dict[str, Any]]:
    """A colour and marker per server, in results order; the ceiling dashed."""
    # matplotlib's default colour cycle (tab10): ten colours, then they repeat.
    colours = rcParams["axes.prop_cycle"].by_key()["color"]
    return {
        server: {
            "color": colours[i % len(colours)],
            "marker": MARKERS[i % len(MARKERS)],
            "linestyle": "--" if server == RAW_POOL else "-",
        }
        for i, server in enumerate(servers)
    }


def draw(document: Mapping[str, Any], outdir: Path) -> list[str]:
    """Write ``<scenario>.png`` for each scenario of the runs; return the file names."""
    names = []
    medians = combined(document["runs"])
    style = styles(list(dict.fromkeys(r["server"] for r in medians)))
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
                    rps.plot(xs, [p[1] for p in points], label=server, **style[server])
                    p99.plot(xs, [p[2] for p in points], label=server, **style[server])
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
