"""How runs and servers are written into results.json."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.monitor import Usage
from bench.plan import Run, condition_name
from bench.servers import ServerSpec
from bench.wrk import WrkResult

# Never written to results: the API token, the server's secret key, the host's paths.
HIDDEN, LEFT_OUT = frozenset({"BENCH_TOKEN", "SECRET_KEY"}), frozenset({"PATH", "HOME"})


@dataclass(frozen=True)
class Measured:  # everything one wrk run produced
    command: list[str]
    script_env: Mapping[str, str]
    result: WrkResult
    output: str
    wrk_cpu_seconds: float
    usage: Usage
    problems: list[str]


def _shown(env: Mapping[str, str]) -> dict[str, str]:
    return {k: ("<hidden>" if k in HIDDEN else v) for k, v in env.items() if k not in LEFT_OUT}


def run_record(run: Run, server: str, measured: Measured, round_number: int = 1) -> dict[str, Any]:
    """One run: what was sent, what came back, what it cost, and in which round."""
    result, usage = measured.result, measured.usage
    seconds = result.duration_s
    ours = usage.cpu_seconds + usage.postgres_cpu_seconds + usage.driver_cpu_seconds
    # Whatever else the machine did meanwhile competed with the server for its cores.
    foreign = max(0.0, usage.machine_busy_seconds - ours - measured.wrk_cpu_seconds)

    def per_request(cpu_seconds: float) -> float | None:  # robust to other load: its cost
        return round(1000 * cpu_seconds / result.requests, 3) if result.requests else None

    return {
        "condition": condition_name(run.latency_ms), "latency_ms": run.latency_ms,
        "server": server, "scenario": run.scenario, "connections": run.connections,
        "duration_s": run.duration,
        "round": round_number,  # results schema 2; a record without it is round 1
        "command": shlex.join(measured.command), "script_env": _shown(measured.script_env),
        "requests": result.requests, "elapsed_s": round(seconds, 3),
        "requests_per_s": round(result.requests_per_s, 1),
        "latency": {k: round(v, 3) for k, v in result.latency_ms.items()},
        "errors": result.errors,
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "unexpected_status": result.unexpected_status,
        "server_cpu_s": round(usage.cpu_seconds, 2),
        "server_cores_used": round(usage.cpu_seconds / seconds, 2) if seconds else 0.0,
        "server_cpu_ms_per_request": per_request(usage.cpu_seconds),
        "postgres_cpu_s": round(usage.postgres_cpu_seconds, 2),
        "postgres_cpu_ms_per_request": per_request(usage.postgres_cpu_seconds),
        "wrk_cpu_s": round(measured.wrk_cpu_seconds, 2),
        "machine_busy_s": round(usage.machine_busy_seconds, 2),
        "foreign_cores": round(foreign / seconds, 2) if seconds else 0.0,
        "peak_rss_mb": {k: round(v, 1) for k, v in usage.peak_rss_mb.items()},
        "pg_backends_max": usage.pg_backends_max,
        "rss_growth_mb": usage.rss_growth_mb,
        "pg_backends_start_end": list(usage.pg_backends_start_end),
        "problems": measured.problems,
        "wrk_output": measured.output,
    }  # fmt: skip


def server_record(spec: ServerSpec, cpus: tuple[int, ...]) -> dict[str, Any]:
    return {"title": spec.title, "command": shlex.join(spec.command(cpus)),
            "settings": dict(spec.settings), "verification": spec.verification,
            "note": spec.note, "starts": {}}  # fmt: skip


def start_line(spec: ServerSpec, cpus: tuple[int, ...]) -> str:
    """The exact shell line that started a server (the secret key shown as hidden)."""
    env = [f"{k}={v}" for k, v in _shown(spec.env).items()]
    return shlex.join(["env", *env, *spec.command(cpus)])


@dataclass
class Outcome:  # everything measured, as results.json stores it
    runs: list[dict[str, Any]] = field(default_factory=list)
    warmups: list[dict[str, Any]] = field(default_factory=list)
    verification: list[dict[str, Any]] = field(default_factory=list)
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    catalogue: dict[str, int] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    postgres: dict[str, Any] = field(default_factory=dict)
    leftovers: list[str] = field(default_factory=list)
