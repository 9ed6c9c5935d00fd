"""Facts about the machine and the software, recorded with every result."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

import psutil

PACKAGES = (
    "Django", "aiohttp", "channels", "asgiref", "psycopg", "psycopg-pool", "gunicorn",
    "uvloop", "orjson", "pydantic",
)  # fmt: skip


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, object]:
    """CPU, cores, memory, kernel, and how busy the machine was at the start."""
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "os": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def versions(extra: dict[str, str]) -> dict[str, str]:
    """Python and the packages that serve requests, plus ``extra`` (PostgreSQL, wrk)."""
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return {**found, **extra}
