"""bench/soak.py's verdict (did RSS and backends stay flat?) and its report.md."""

from __future__ import annotations

from typing import Any

from bench.scaffold import markdown_table

# Growth allowed after the warm-up besides the response cache (pools, allocator).
FLAT_MIB = 8.0


def verdict(samples: list[dict[str, Any]], warm_up: float, allowed_mib: float) -> dict[str, Any]:
    """Before (first sample after the warm-up) and after (last sample), per worker.

    A worker may grow by what its response cache may hold (it fills up to its
    bound, then evicts) plus FLAT_MIB; a leak keeps growing past that.
    """
    before = next(sample for sample in samples if sample["t_s"] >= warm_up)
    after = samples[-1]
    growth = {
        pid: round(after["worker_rss_mib"].get(pid, 0.0) - rss, 1)
        for pid, rss in before["worker_rss_mib"].items()
    }
    same_workers = set(before["worker_rss_mib"]) == set(after["worker_rss_mib"])
    flat_rss = same_workers and all(value <= allowed_mib for value in growth.values())
    flat_backends = sum(after["backends"].values()) <= sum(before["backends"].values())
    return {
        "before": before,
        "after": after,
        "rss_growth_mib": growth,
        "same_workers": same_workers,
        "flat_rss": flat_rss,
        "flat_backends": flat_backends,
        "criterion": f"each worker grows at most {allowed_mib:g} MiB after the warm-up "
        f"({FLAT_MIB:g} MiB, plus the response cache's bound when it is on), and the "
        "backends after are no more than before",
    }


def report(result: dict[str, Any], judged: dict[str, Any], command: str) -> str:
    """report.md: what ran, the verdict, before and after, every sample."""
    tally = result["tally"]
    before, after = judged["before"], judged["after"]
    lines = [
        "# Soak: aioapi under Gunicorn, mixed load",
        "",
        f"Command: `{command}`",
        "",
        f"- Ran {result['elapsed_s']} s; {tally.requests} reads and {tally.writes} "
        f"authenticated PATCHes; statuses {dict(sorted(tally.statuses.items()))}.",
        f"- Socket errors or timeouts: {sum(tally.errors.values())} {dict(tally.errors)}; "
        f"unexpected statuses: {sum(tally.unexpected.values())} {dict(tally.unexpected)}.",
        f"- Verdict: RSS {'flat' if judged['flat_rss'] else 'NOT flat'}, backends "
        f"{'flat' if judged['flat_backends'] else 'NOT flat'} ({judged['criterion']}).",
        "",
        *markdown_table(
            ["", "t (s)", "RSS per worker (MiB)", "PostgreSQL backends"],
            [
                [label, s["t_s"], s["worker_rss_mib"], s["backends"]]
                for label, s in (("before (after warm-up)", before), ("after", after))
            ],
            ("left", "right", "left", "left"),
        ),
        f"RSS growth per worker: {judged['rss_growth_mib']} MiB.",
        "",
        "## Samples",
        "",
        *markdown_table(
            ["t (s)", "requests", "RSS per worker (MiB)", "backends"],
            [
                [s["t_s"], s["requests"], s["worker_rss_mib"], s["backends"]]
                for s in result["samples"]
            ],
            ("right", "right", "left", "left"),
        ),
    ]
    return "\n".join(lines)
