"""bench/results/LATEST.md: a link to the newest full run (the default plan, nothing
narrowed) and its one-screen answer, so the README can point at one file that
stays current. ``python -m bench`` rewrites it when a full run finishes;
``python -m bench.report --latest`` rewrites it from what is committed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import answer

NAME = "LATEST.md"


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


def markdown(folder: Path, document: dict[str, Any]) -> str:
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
        *answer.markdown(document),
    ]
    return "\n".join(lines).rstrip() + "\n"


def write(results: Path) -> Path | None:
    """Rewrite ``results``/LATEST.md for the newest full run; its path, or None."""
    newest = newest_full_run(results)
    if newest is None:
        return None
    target = results / NAME
    target.write_text(markdown(*newest))
    return target
