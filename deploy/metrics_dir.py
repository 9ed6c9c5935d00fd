"""prometheus-client's multiprocess directory, for a Gunicorn config.

Each worker writes its counters to files in ``PROMETHEUS_MULTIPROC_DIR`` and a
scrape of any worker sums them (aioapi/metrics.py). The directory must be set
before a worker imports prometheus-client, and must start empty: files of an
earlier run would be counted again.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import MutableMapping
from pathlib import Path

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def prepare(environ: MutableMapping[str, str], prefix: str) -> Path:
    """The directory named by ``PROMETHEUS_MULTIPROC_DIR``, emptied; a new temporary
    one (named in the environment for the workers) when it is unset."""
    given = environ.get(VARIABLE)
    if not given:
        path = Path(tempfile.mkdtemp(prefix=prefix))
        environ[VARIABLE] = str(path)
        return path
    path = Path(given)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters stay in the totals)."""
    from prometheus_client import multiprocess  # the master imports it only now

    multiprocess.mark_process_dead(pid)
