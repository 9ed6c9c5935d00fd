"""Running wrk and reading the JSON line the scenario scripts print from ``done()``."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent / "scenarios"
ERROR_KINDS = ("connect", "read", "write", "timeout")
PERCENTILES = ("p50", "p75", "p90", "p95", "p99", "p99_9")


class WrkError(RuntimeError):
    """wrk failed, or printed no result line."""


@dataclass(frozen=True)
class WrkResult:  # what one wrk run measured; latencies in milliseconds
    requests: int
    duration_s: float
    bytes: int
    errors: dict[str, int]  # connect, read, write, timeout; status = HTTP >= 400
    statuses: dict[int, int]
    unexpected_status: int
    latency_ms: dict[str, float]

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    def problems(self) -> list[str]:
        """Everything that makes this run's numbers untrustworthy, in words."""
        found = [f"{self.errors[kind]} {kind} errors" for kind in ERROR_KINDS if self.errors[kind]]
        if self.unexpected_status:
            found.append(f"{self.unexpected_status} unexpected statuses {self.statuses}")
        if self.requests == 0:
            found.append("no request completed")
        return found


def parse_result(stdout: str) -> WrkResult:
    """The result of the last JSON line in wrk's output."""
    line = next((line for line in reversed(stdout.splitlines()) if line.startswith("{")), None)
    if line is None:
        raise WrkError("wrk printed no result line (is the scenario script's done() installed?)")
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise WrkError(f"unreadable result line {line!r}: {error}") from None
    keys = ("min", "mean", "stdev", *PERCENTILES, "max")
    return WrkResult(
        requests=int(data["requests"]), duration_s=int(data["duration_us"]) / 1e6,
        bytes=int(data["bytes"]),
        errors={kind: int(data["errors"][kind]) for kind in (*ERROR_KINDS, "status")},
        statuses={int(code): int(count) for code, count in data["statuses"].items()},
        unexpected_status=int(data["unexpected_status"]),
        latency_ms={key: float(data["latency_us"][key]) / 1000 for key in keys},
    )  # fmt: skip


def wrk_command(
    url: str, script: str, *, connections: int, threads: int, duration: int, timeout: int
) -> list[str]:
    """The wrk invocation, exactly as run (results.json records it)."""
    return [
        "wrk",
        "--threads", str(min(threads, connections)),
        "--connections", str(connections),
        "--duration", f"{duration}s",
        "--timeout", f"{timeout}s",
        "--latency",
        "--script", script,
        url,
    ]  # fmt: skip


def load(url: str, script: str = "get.lua", *, connections: int, duration: int,
         env: Mapping[str, str] | None = None) -> WrkResult:  # fmt: skip
    """One wrk run of ``script`` on 2 threads, expecting 200s unless ``env`` says otherwise."""
    command = wrk_command(url, script, connections=connections, threads=2, duration=duration,
                          timeout=10)  # fmt: skip
    return run(command, {"BENCH_EXPECT": "200", **(env or {})}, duration + 70)[0]


def wrk_version() -> str:
    """wrk's banner line (``wrk -v`` exits 1 after printing it)."""
    if shutil.which("wrk") is None:
        return "not installed"
    output = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return (output.stdout or output.stderr).splitlines()[0].strip()


def run(command: list[str], env: Mapping[str, str], timeout: float) -> tuple[WrkResult, str, float]:
    """Run wrk from the scripts' folder; return the result, its output and its CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(command, cwd=SCRIPTS, capture_output=True, text=True,
                               env={**os.environ, "LUA_PATH": f"{SCRIPTS}/?.lua;;", **env},
                               timeout=timeout, check=False)  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if completed.returncode != 0:
        raise WrkError(f"wrk exited with {completed.returncode}: {completed.stderr.strip()}")
    return parse_result(completed.stdout), completed.stdout, cpu
