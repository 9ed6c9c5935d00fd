"""What a server process does once it has loaded everything, before its first request.

Both servers (``mymoviedb/wsgi.py`` and ``aioapi/gunicorn.py``) call
:func:`freeze_startup_objects` after Django, the URLconf, the models and the app
are loaded. Those hundreds of thousands of objects live as long as the process,
yet every full collection of Python's cyclic garbage collector walks them all:
a pause of tens of milliseconds on the thread that triggered it, with the GIL
held, which showed as a long tail of slow requests under load
(bench/results/2026-12-05-lean*/). ``gc.freeze()`` moves them to a generation the
collector never scans; objects made by requests are still collected as before.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Collect start-up garbage once, then exempt what survives from future scans."""
    gc.collect()
    gc.freeze()
