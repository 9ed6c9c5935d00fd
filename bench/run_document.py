"""What ``python -m bench`` writes when a run finishes: the results document
(results.json's content), its console summary, and LATEST.md after a full run."""

from __future__ import annotations

import argparse
import os
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import facts, headline, latest, summary, wrk
from bench.catalogue import database_name
from bench.plan import SCENARIOS
from bench.runner import BenchConfig, Outcome
from bench.scaffold import fmt

# Options that narrow the plan: a run with any of them is not a full run.
NARROWING = ("scenarios", "servers", "conditions", "connections", "duration")


def narrowed(args: argparse.Namespace) -> bool:
    """Whether the command line narrowed its plan (then it is not a full run)."""
    return any(getattr(args, name) for name in NARROWING)


def document(
    args: argparse.Namespace,
    argv: list[str],
    config: BenchConfig,
    outcome: Outcome,
    started: datetime,
    machine: dict[str, object],
) -> dict[str, Any]:
    with_db = {"PostgreSQL": outcome.postgres.get("version", "?"), "wrk": wrk.wrk_version()}
    doc: dict[str, Any] = {
        # 2: every run has its "round" and the document its "rounds"; 1 had neither.
        "schema": 2,
        "label": args.label or config.plan.name,
        "plan": config.plan.name,
        # The whole plan, nothing narrowed: what bench/results/LATEST.md points to.
        "full": not narrowed(args),
        "rounds": config.plan.rounds,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "bench", *argv]),
        "machine": machine,
        "versions": facts.versions(with_db),
        "fairness": list(summary.FAIRNESS),
        "database": {
            "name": database_name(config.database_url),
            "max_connections": outcome.postgres.get("max_connections"),
        },
        "catalogue": outcome.catalogue,
        "catalogue_source": {
            "source": config.catalogue.source,
            "synthetic": config.catalogue.synthetic,
            "seed": config.catalogue.seed,
        },
        "scenarios": {name: s.summary for name, s in SCENARIOS.items()},
        "servers": outcome.servers,
        "wrk": {
            "threads": config.wrk_threads,
            "timeout_s": config.wrk_timeout,
            "primer": list(config.plan.primer),
            "warmup": list(config.plan.warmup),
        },
        "inputs": outcome.inputs,
        "verification": outcome.verification,
        "runs": outcome.runs,
        "warmups": outcome.warmups,
        "leftovers": outcome.leftovers,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    doc["headline"] = summary.headline(doc)
    doc["targets"] = summary.targets(doc)
    return doc


def summarise(doc: dict[str, Any], outdir: Path, say: Any) -> None:
    """The headline and the targets on the console."""
    say("")
    medians = "medians of the rounds: " if any("round_ratios" in h for h in doc["headline"]) else ""
    for h in doc["headline"]:
        rounds = f" (per round {headline.ROUND_RATIOS[1](h)})" if "round_ratios" in h else ""
        say(
            f"list 10 · {h['condition']} · {h['connections']} connections: {medians}"
            f"Django {fmt(h['django_rps'])} req/s (p99 {fmt(h['django_p99_ms'], 1)} ms), "
            f"aioapi {fmt(h['aioapi_rps'])} req/s (p99 {fmt(h['aioapi_p99_ms'], 1)} ms), "
            f"aioapi/Django {fmt(h['aioapi_over_django'], 2)}{rounds}; ceilings: raw pool "
            f"{fmt(h['raw_pool_rps'])}, constant {fmt(h['constant_rps'])} req/s"
        )
    for t in doc["targets"]:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        issue = f"issue {t['issue']}" if t.get("issue") else "every issue"
        say(f"target ({issue}): {t['target']} {t['goal']}: {fmt(t['measured'], 2)} → {verdict}")
    flagged = [r for r in doc["runs"] if r["problems"]]
    if flagged:
        say(f"!!! {len(flagged)} run(s) had errors: see the top of report.md")
    for leftover in doc["leftovers"]:
        say(f"!!! left behind: {leftover}")
    say(f"results: {outdir}/report.md")


def after_full_run(doc: dict[str, Any], results: Path, say: Any) -> None:
    """Point bench/results/LATEST.md at this run when it was a full one."""
    if latest.is_full(doc):
        say(f"latest full run: {latest.write(results)}")
