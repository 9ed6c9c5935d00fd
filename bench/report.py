"""From results.json to report.md and charts: the headline, the targets, every run.

Everything here reads the results document only, so a report can be rebuilt
from a committed results.json (``python -m bench.report DIR``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.plan import AIOAPI, DJANGO, RAW_POOL, condition_name

Key = tuple[str, str, str, int]  # condition, server, scenario, connections
LOOPBACK = condition_name(0)
SLOW = condition_name(10)

FAIRNESS = (
    "Both servers run under Gunicorn, pinned with taskset to the same CPUs, with the "
    "same number of worker processes; one server runs at a time.",
    "DEBUG is off on both; both use Django's psycopg pool of the same fixed size, the "
    "same database, the same data and the same selectors and renderer.",
    "Before any load, every request of every scenario is sent to each server and the "
    "status, body bytes and ETag must be identical; any difference aborts the bench.",
    "Each server gets a primer (low concurrency) and a warm-up before its measured runs.",
    "Any socket error, timeout or unexpected status is reported per run and makes the "
    "command fail (unless --allow-errors); nothing is averaged away.",
    "Simulated database latency (SIMULATED_DB_LATENCY_MS) is a sleep before every SQL "
    "statement on both servers (movies/latency.py): simulated, not a real network.",
    "wrk and PostgreSQL run on the same machine and compete for the same cores.",
)


def index(runs: Iterable[Mapping[str, Any]]) -> dict[Key, Mapping[str, Any]]:
    return {(r["condition"], r["server"], r["scenario"], r["connections"]): r for r in runs}


def _rps(runs: Mapping[Key, Mapping[str, Any]], key: Key) -> float | None:
    run = runs.get(key)
    return float(run["requests_per_s"]) if run else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def headline(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """list 10 at 64 and 400 connections: both servers, their ratio, the ceilings."""
    runs = index(document["runs"])
    rows = []
    conditions = dict.fromkeys(r["condition"] for r in document["runs"])
    for condition in conditions:
        for connections in (64, 400):
            django = runs.get((condition, DJANGO, "list-10", connections))
            aioapi = runs.get((condition, AIOAPI, "list-10", connections))
            if not django and not aioapi:
                continue
            raw = _rps(runs, (condition, RAW_POOL, "list-10", connections))
            constant = _rps(runs, (LOOPBACK, AIOAPI, "constant", connections))
            d_rps = float(django["requests_per_s"]) if django else None
            a_rps = float(aioapi["requests_per_s"]) if aioapi else None
            rows.append(
                {
                    "condition": condition,
                    "connections": connections,
                    "django_rps": d_rps,
                    "aioapi_rps": a_rps,
                    "aioapi_over_django": _ratio(a_rps, d_rps),
                    "django_p99_ms": django["latency"]["p99"] if django else None,
                    "aioapi_p99_ms": aioapi["latency"]["p99"] if aioapi else None,
                    "raw_pool_rps": raw,
                    "constant_rps": constant,
                    "django_of_raw_pool": _ratio(d_rps, raw),
                    "aioapi_of_raw_pool": _ratio(a_rps, raw),
                    "django_of_constant": _ratio(d_rps, constant),
                    "aioapi_of_constant": _ratio(a_rps, constant),
                }
            )
    return rows


def targets(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Issue 3's acceptance figures, each measured, met, missed or not measured."""
    runs = index(document["runs"])

    def ratio(condition: str, connections: int) -> float | None:
        return _ratio(
            _rps(runs, (condition, AIOAPI, "list-10", connections)),
            _rps(runs, (condition, DJANGO, "list-10", connections)),
        )

    p99 = runs.get((LOOPBACK, AIOAPI, "list-10", 64))
    flagged = sum(1 for r in document["runs"] if r["problems"])
    rows: list[tuple[str, float | None, str, bool | None]] = []
    for connections in (64, 400):
        value = ratio(LOOPBACK, connections)
        rows.append((f"aioapi/Django req/s, list 10, loopback, {connections} connections",
                     value, ">= 1.4", None if value is None else value >= 1.4))  # fmt: skip
    value = ratio(SLOW, 400)
    rows.append(("aioapi/Django req/s, list 10, 10 ms simulated, 400 connections",
                 value, ">= 5", None if value is None else value >= 5))  # fmt: skip
    p99_value = float(p99["latency"]["p99"]) if p99 else None
    rows.append(("aioapi p99 (ms), list 10, loopback, 64 connections",
                 p99_value, "< 50", None if p99_value is None else p99_value < 50))  # fmt: skip
    rows.append(("runs with errors, timeouts or unexpected statuses",
                 float(flagged), "0", flagged == 0))  # fmt: skip
    return [{"target": t, "measured": m, "goal": g, "met": ok} for t, m, g, ok in rows]


def _fmt(value: float | None, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{suffix}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def _workers_rss(run: Mapping[str, Any]) -> str:
    workers = [v for k, v in run["peak_rss_mb"].items() if k.startswith("worker")]
    return "/".join(f"{v:.0f}" for v in workers) or "–"


def _errors(run: Mapping[str, Any]) -> str:
    errors = run["errors"]
    socket = sum(errors[k] for k in ("connect", "read", "write"))
    return f"{socket}/{errors['timeout']}/{run['unexpected_status']}"


def markdown(document: Mapping[str, Any], charts: Sequence[str]) -> str:
    """The whole report.md."""
    out = [
        f"# Django (Gunicorn) vs aioapi (aiohttp): {document['label']}",
        "",
        f"Measured {document['started_at']} to {document['finished_at']} (UTC) on "
        f"{document['machine']['cpu_model']}, {document['machine']['cores']} cores, "
        f"{document['machine']['memory_gib']} GiB, kernel {document['machine']['kernel']}.",
        "",
        f"Command: `{document['command']}`",
        "",
    ]
    flagged = [r for r in document["runs"] if r["problems"]]
    if flagged:
        out += [f"## ⚠ {len(flagged)} run(s) had errors", ""]
        out += [
            f"- **{r['condition']} · {r['server']} · {r['scenario']} · {r['connections']} "
            f"connections**: {'; '.join(r['problems'])}"
            for r in flagged
        ]
        out.append("")
    else:
        out += ["No measured run had a socket error, a timeout or an unexpected status.", ""]
    for leftover in document.get("leftovers", []):
        out += [f"**⚠ left behind:** {leftover}", ""]

    out += ["## Headline: list 10", ""]
    out += _table(
        ("condition", "conn.", "Django req/s", "aioapi req/s", "aioapi/Django", "Django p99 ms",
         "aioapi p99 ms", "raw pool req/s", "constant req/s", "Django/raw", "aioapi/raw",
         "Django/const.", "aioapi/const."),
        (
            (h["condition"], str(h["connections"]), _fmt(h["django_rps"]), _fmt(h["aioapi_rps"]),
             _fmt(h["aioapi_over_django"], 2, "×"), _fmt(h["django_p99_ms"], 1),
             _fmt(h["aioapi_p99_ms"], 1), _fmt(h["raw_pool_rps"]), _fmt(h["constant_rps"]),
             _fmt(h["django_of_raw_pool"], 2), _fmt(h["aioapi_of_raw_pool"], 2),
             _fmt(h["django_of_constant"], 3), _fmt(h["aioapi_of_constant"], 3))
            for h in document["headline"]
        ),
    )  # fmt: skip
    out += ["## Issue 3 targets", ""]
    verdict = {True: "met", False: "**missed**", None: "not measured"}
    out += _table(
        ("target", "goal", "measured", "verdict"),
        ((t["target"], t["goal"], _fmt(t["measured"], 2), verdict[t["met"]])
         for t in document["targets"]),
    )  # fmt: skip

    out += ["## Every run", "",
            "Latencies in ms. Errors: socket (connect+read+write) / timeouts / unexpected "
            "statuses. CPU: server CPU seconds over the run (cores used). RSS: peak MiB per "
            "worker. PG: most backends connected to the bench database at once.", ""]  # fmt: skip
    scenarios = dict.fromkeys(r["scenario"] for r in document["runs"])
    for scenario in scenarios:
        runs = [r for r in document["runs"] if r["scenario"] == scenario]
        out += [f"### {scenario}: {document['scenarios'][scenario]}", ""]
        out += _table(
            ("condition", "conn.", "server", "req/s", "p50", "p90", "p99", "max", "errors",
             "CPU s (cores)", "RSS MiB", "PG"),
            (
                (r["condition"], str(r["connections"]), r["server"], _fmt(r["requests_per_s"]),
                 _fmt(r["latency"]["p50"], 1), _fmt(r["latency"]["p90"], 1),
                 _fmt(r["latency"]["p99"], 1), _fmt(r["latency"]["max"], 1),
                 ("⚠ " if r["problems"] else "") + _errors(r),
                 f"{r['server_cpu_s']:.1f} ({r['server_cores_used']:.2f})", _workers_rss(r),
                 str(r["pg_backends_max"]))
                for r in runs
            ),
        )  # fmt: skip
    if charts:
        out += ["## Charts", ""]
        out += [f"![{Path(c).stem}]({c})" for c in charts]
        out.append("")
    out += ["## Servers", ""]
    for name, server in document["servers"].items():
        out += [f"- **{name}** ({server['title']}): `{server['command']}`",
                f"  - settings: `{json.dumps(server['settings'])}`"]  # fmt: skip
    out += ["", "## Software", ""]
    out += [f"- {name}: {version}" for name, version in document["versions"].items()]
    out += ["", "## Catalogue", ""]
    out += [f"- {name}: {count:,}" for name, count in document["catalogue"].items()]
    out += ["", "## Fairness rules", ""]
    out += [f"- {rule}" for rule in document["fairness"]]
    out.append("")
    return "\n".join(out)


def charts(document: Mapping[str, Any], outdir: Path) -> list[str]:
    """One PNG per scenario: req/s and p99 against connections, a column per condition."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    names = []
    scenarios = dict.fromkeys(r["scenario"] for r in document["runs"])
    for scenario in scenarios:
        runs = [r for r in document["runs"] if r["scenario"] == scenario]
        conditions = list(dict.fromkeys(r["condition"] for r in runs))
        figure, axes = pyplot.subplots(
            2, len(conditions), figsize=(4.2 * len(conditions), 6.4), squeeze=False
        )
        for column, condition in enumerate(conditions):
            for server in dict.fromkeys(r["server"] for r in runs):
                points = sorted(
                    (r["connections"], r["requests_per_s"], r["latency"]["p99"])
                    for r in runs
                    if r["condition"] == condition and r["server"] == server
                )
                if not points:
                    continue
                xs = [p[0] for p in points]
                style = "--" if server == RAW_POOL else "-"
                axes[0][column].plot(xs, [p[1] for p in points], style, marker="o", label=server)
                axes[1][column].plot(xs, [p[2] for p in points], style, marker="o", label=server)
            axes[0][column].set_title(f"{scenario} · {condition}", fontsize=10)
            axes[0][column].set_ylabel("requests/s")
            axes[1][column].set_ylabel("p99 latency (ms)")
            axes[1][column].set_yscale("log")
            for row in (0, 1):
                axes[row][column].set_xscale("log")
                axes[row][column].set_xlabel("connections")
                axes[row][column].grid(True, alpha=0.3)
                axes[row][column].legend(fontsize=8)
            axes[0][column].set_ylim(bottom=0)
        figure.tight_layout()
        name = f"{scenario}.png"
        figure.savefig(outdir / name, dpi=110)
        pyplot.close(figure)
        names.append(name)
    return names


def write(document: Mapping[str, Any], outdir: Path) -> None:
    """results.json, the charts and report.md into ``outdir``."""
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    names = charts(document, outdir)
    (outdir / "report.md").write_text(markdown(document, names))


def main(argv: Sequence[str]) -> int:
    """Rebuild report.md and the charts of a results folder."""
    if len(argv) != 1:
        print("usage: python -m bench.report bench/results/<folder>", file=sys.stderr)
        return 2
    outdir = Path(argv[0])
    document = json.loads((outdir / "results.json").read_text())
    document["headline"], document["targets"] = headline(document), targets(document)
    write(document, outdir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
