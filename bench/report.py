"""report.md and the charts of a results document (the answer first, errors, the
targets, every run, what ran on what) and bench/results/LATEST.md, the newest full run's
answer. It reads the document only: ``python -m bench.report <folder>`` rebuilds a
folder's report, ``--latest`` rewrites LATEST.md."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib import rcParams
from matplotlib.figure import Figure

from bench import summary
from bench.plan import RAW_POOL
from bench.scaffold import RESULTS, Column, fmt, table

# A one-minute load average above this at the start means other work competed; so do
# other processes using more cores than NOISY_CORES on average during a run.
BUSY_LOAD, NOISY_CORES = 1.0, 0.25
SOCKET = ("connect", "read", "write")
NAME = "LATEST.md"


def spread(value: float | None, low: float | None, high: float | None) -> str:
    """``465 (356–512)``: a median and the range of its rounds; ``465`` without rounds."""
    if value is None or low is None or high is None:
        return fmt(value)
    return f"{fmt(value)} ({fmt(low)}–{fmt(high)})"


VERDICTS = {True: "met", False: "**missed**", None: "not measured"}
TARGETS: list[Column] = [
    ("issue", lambda t: f"#{t['issue']}" if t.get("issue") else "all"),
    ("target", lambda t: t["target"]),
    ("goal", lambda t: t["goal"]),
    ("measured", lambda t: fmt(t["measured"], 2)),
    ("verdict", lambda t: VERDICTS[t["met"]]),
]


RUNS: list[Column] = [
    ("condition", lambda r: r["condition"]),
    ("conn.", lambda r: str(r["connections"])),
    ("server", lambda r: r["server"]),
    ("req/s", lambda r: spread(r["requests_per_s"], r.get("requests_per_s_min"),
                               r.get("requests_per_s_max"))),
    *((p, lambda r, p=p: fmt(r["latency"].get(p), 1)) for p in ("p50", "p90", "p95", "p99", "max")),
    ("errors", lambda r: f"{'⚠ ' if r['problems'] else ''}{sum(r['errors'][k] for k in SOCKET)}"
               f"/{r['errors']['timeout']}/{r['unexpected_status']}"),
    ("CPU s (cores)", lambda r: f"{r['server_cpu_s']:.1f} ({r['server_cores_used']:.2f})"),
    ("CPU ms/req", lambda r: fmt(r.get("server_cpu_ms_per_request"), 2)),
    ("PG ms/req", lambda r: fmt(r.get("postgres_cpu_ms_per_request"), 2)),
    ("other cores", lambda r: "–" if (c := r.get("foreign_cores")) is None
                              else f"{'~ ' if c > NOISY_CORES else ''}{c:.2f}"),
    ("RSS MiB", lambda r: "/".join(f"{mib:.0f}" for name, mib in r["peak_rss_mb"].items()
                                   if name.startswith("worker")) or "–"),
    ("PG", lambda r: str(r["pg_backends_max"])),
]  # fmt: skip
RUNS_LEGEND = (
    "Latencies in ms. Errors: socket (connect+read+write) / timeouts / unexpected statuses. "
    "CPU: the server's CPU seconds over the run (cores used on average) and per request; "
    "PG ms/req: the bench database's PostgreSQL backends' CPU per request. RSS: peak MiB of "
    "each worker. PG: most backends connected to the bench database at once. Other cores: "
    "CPU the rest of the machine used meanwhile (not the server, its PostgreSQL backends, "
    f"wrk or the driver); above {NOISY_CORES} (marked ~) the run competed with foreign work."
)


def _problems(document: Mapping[str, Any]) -> list[str]:
    flagged = [r for r in document["runs"] if r["problems"]]
    rounds = summary.rounds_of(document) > 1
    out = [f"## ⚠ {len(flagged)} run(s) had errors", ""] if flagged else []
    out += [f"- **{r['condition']} · {r['server']} · {r['scenario']} · {r['connections']} "
            f"connections{f' · round {summary.round_of(r)}' if rounds else ''}**: "
            f"{'; '.join(r['problems'])}" for r in flagged] or [
        "No measured run had a socket error, a timeout or an unexpected status."]  # fmt: skip
    out += [f"\n**⚠ left behind:** {leftover}" for leftover in document.get("leftovers", [])]
    return [*out, ""]


def _load(document: Mapping[str, Any]) -> list[str]:
    start = document["machine"].get("load_average_at_start")
    end = document.get("load_average_at_end")
    if not start or not end:
        return []
    line = f"Load average (1, 5, 15 min) at the start {start}, at the end {end}."
    if start[0] > BUSY_LOAD:
        line = f"**⚠ The machine was busy when the run started.** {line}"
    noisy = [r for r in document["runs"] if (r.get("foreign_cores") or 0) > NOISY_CORES]
    if noisy:
        line += (f" **⚠ {len(noisy)} of {len(document['runs'])} runs competed with foreign"
                 f" work** (other processes used more than {NOISY_CORES} cores on average:"
                 " marked ~).")  # fmt: skip
    return [line, ""]


def _every_run(document: Mapping[str, Any]) -> list[str]:
    out = ["## Every run", "", RUNS_LEGEND, ""]
    if (rounds := summary.rounds_of(document)) > 1:
        out += [f"Measured in {rounds} rounds, the servers' order reversed every other round: "
                "medians of the rounds (req/s with their min–max), errors summed, the most "
                "other cores, RSS and PG of any round; every round's run is in results.json.",
                ""]  # fmt: skip
    medians = summary.combined(document["runs"])
    for scenario in dict.fromkeys(r["scenario"] for r in document["runs"]):
        out += [f"### {scenario}: {document['scenarios'][scenario]}", ""]
        out += table(RUNS, (r for r in medians if r["scenario"] == scenario))
    return out


def _context(document: Mapping[str, Any]) -> list[str]:
    out = ["## Servers", ""]
    for name, server in document["servers"].items():
        out += [f"- **{name}** ({server['title']}): `{server['command']}`",
                f"  - settings: `{json.dumps(server['settings'])}`",
                *([f"  - **note**: {server['note']}"] if server.get("note") else [])]  # fmt: skip
    return [*out, "", "Every start's exact command line and environment is in results.json; "
            "the fairness rules are bench/README.md's.", "", "## Software", "",
            *(f"- {name}: {version}" for name, version in document["versions"].items()),
            "", "## Catalogue", "",
            *(f"- {name}: {n:,}" for name, n in document["catalogue"].items()), ""]  # fmt: skip


def markdown(document: Mapping[str, Any], chart_files: Sequence[str]) -> str:
    """The whole report.md."""
    machine = document["machine"]
    out = [
        f"# {' vs '.join(summary.contenders(document)) or 'Benchmark'}: {document['label']}", "",
        *summary.answer(document),
        f"Measured {document['started_at']} to {document['finished_at']} (UTC) on "
        f"{machine['cpu_model']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"kernel {machine['kernel']}.", "",
        f"Command: `{document['command']}`", "",
        *_load(document), *_problems(document),
        "## Targets", "", *table(TARGETS, document["targets"]),
        *_every_run(document),
    ]  # fmt: skip
    if chart_files:
        out += ["## Charts", "", *(f"![{Path(c).stem}]({c})" for c in chart_files), ""]
    return "\n".join([*out, *_context(document)])


def write(document: Mapping[str, Any], outdir: Path) -> None:
    """results.json, the charts and report.md into ``outdir``."""
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    names = draw(document, outdir)
    (outdir / "report.md").write_text(markdown(document, names))


def rebuild(outdir: Path) -> None:
    """report.md and the charts of ``outdir`` from its results.json."""
    document = json.loads((outdir / "results.json").read_text())
    document["targets"] = summary.targets(document)
    write(document, outdir)


MARKERS = "osD^vPX*<>"


def styles(servers: list[str]) -> dict[str, dict[str, Any]]:
    """A colour and marker per server, in results order; the ceiling dashed."""
    colours = rcParams["axes.prop_cycle"].by_key()["color"]  # matplotlib's default cycle
    return {server: {"color": colours[i % len(colours)], "marker": MARKERS[i % len(MARKERS)],
                     "linestyle": "--" if server == RAW_POOL else "-"}
            for i, server in enumerate(servers)}  # fmt: skip


def draw(document: Mapping[str, Any], outdir: Path) -> list[str]:
    """Write ``<scenario>.png`` for each scenario of the runs; return the file names."""
    names = []
    medians = summary.combined(document["runs"])
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
                mine = (r for r in runs if (r["condition"], r["server"]) == (condition, server))
                points = sorted((r["connections"], r["requests_per_s"], r["latency"]["p99"])
                                for r in mine)  # fmt: skip
                for plot, index in ((rps, 1), (p99, 2)):
                    if points:
                        plot.plot([p[0] for p in points], [p[index] for p in points],
                                  label=server, **style[server])  # fmt: skip
            rps.set(title=f"{scenario} · {condition}", ylabel="requests/s", ylim=(0, None))
            rps.title.set_fontsize(10)
            p99.set(ylabel="p99 latency (ms, log)", yscale="log")
            for plot in (rps, p99):
                plot.set(xscale="log", xlabel="connections")
                plot.minorticks_off()
                plot.set_xticks(counts, labels=[str(count) for count in counts])
                plot.grid(True, alpha=0.3)
                plot.legend(fontsize=8)
        figure.tight_layout()
        names.append(f"{scenario}.png")
        figure.savefig(outdir / names[-1], dpi=110)
    return names


def is_full(document: dict[str, Any]) -> bool:
    """The default plan with no scenario, server, condition, connection count or
    duration narrowed (results before the "full" field: the default plan)."""
    return document.get("plan") == "default" and document.get("full", True)


def newest_full_run(results: Path) -> tuple[Path, dict[str, Any]] | None:
    """The folder and document of the full run that started last, if any."""
    found: list[tuple[str, Path, dict[str, Any]]] = []
    for path in sorted(results.glob("*/results.json")):
        document = json.loads(path.read_text())
        if isinstance(document, dict) and is_full(document):
            found.append((str(document.get("started_at", "")), path.parent, document))
    if not found:
        return None
    _, folder, document = max(found, key=lambda item: (item[0], item[1].name))
    return folder, document


def latest_markdown(folder: Path, document: dict[str, Any]) -> str:
    name = folder.name
    lines = [
        "# The latest full benchmark run",
        "",
        f"[{name}/report.md]({name}/report.md): `{document.get('command', '')}`, "
        f"{document.get('started_at', '?')} to {document.get('finished_at', '?')} (UTC).",
        "",
        "Written by `python -m bench` when a run of the default plan finishes (nothing "
        "narrowed); `python -m bench.report --latest` rewrites it. Other runs (rounds, "
        "plans of one issue, the side scripts) are in the folders beside this file.",
        "",
        *summary.answer(document),
    ]
    return "\n".join(lines).rstrip() + "\n"


def write_latest(results: Path) -> Path | None:
    """Rewrite ``results``/LATEST.md for the newest full run; its path, or None."""
    if (newest := newest_full_run(results)) is None:
        return None
    (results / NAME).write_text(latest_markdown(*newest))
    return results / NAME


def main(argv: Sequence[str]) -> int:
    """Rebuild a results folder's report.md and charts, or bench/results/LATEST.md."""
    p = argparse.ArgumentParser(prog="python -m bench.report", description=main.__doc__)
    p.add_argument("folder", nargs="?", type=Path, help="bench/results/<folder>")
    p.add_argument("--latest", action="store_true", help="rewrite LATEST.md")
    p.add_argument("--results-dir", type=Path, default=RESULTS, help="(%(default)s)")
    args = p.parse_args(argv)
    if args.folder is None and not args.latest:
        p.error("name a results folder, or --latest")
    if args.folder is not None:
        rebuild(args.folder)
    if args.latest:
        written = write_latest(args.results_dir)
        print(f"{written}" if written else f"no full run under {args.results_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
