"""Gunicorn settings for aioapi: aiohttp workers, one event loop per process.

    gunicorn --config deploy/gunicorn_api.conf.py

Gunicorn here only forks, supervises and recycles the workers; each worker runs
the aiohttp server itself (aiohttp's worker on asyncio's loop, draining before it
stops: ``aioapi.worker.DrainingWorker``). Every setting is
read from a ``GUNICORN_API_*`` variable (a few shared ones from ``GUNICORN_*``);
aioapi's own knobs (``API_DB_THREADS``, ``API_MAX_BODY_BYTES``, ...) are in
aioapi/settings.py. Scale out with more replicas of this process behind nginx
(deploy/README.md), each sized to the cores it gets.
"""

from __future__ import annotations

import os
from typing import Any

import environ

from deploy import budget, metrics_dir

env = environ.Env()

# An async factory: the worker awaits it after the fork, so django.setup(), the
# ORM bridge's threads and their connections all belong to one worker.
wsgi_app = "aioapi.gunicorn:app"
proc_name = "mymoviedb-api"

# Loopback by default: only nginx should reach the API. Containers bind 0.0.0.0.
bind = env.list("GUNICORN_API_BIND", default=["127.0.0.1:8080"])
backlog = env.int("GUNICORN_API_BACKLOG", default=2048)

# aiohttp's worker, draining keep-alive connections before it stops so a reload or a
# rolling restart loses no request, on asyncio's loop: with the ORM threads busy,
# uvloop left bursts of new connections unaccepted (aioapi/worker.py).
# "aioapi.worker.DrainingUVLoopWorker" is the same on uvloop.
worker_class = env.str("GUNICORN_API_WORKER_CLASS", default="aioapi.worker.DrainingWorker")
# One event loop per core: a loop never waits on the database (the bridge's threads
# do), so more processes than cores only add context switches and connections.
# The database sees up to workers x API_DB_THREADS connections per replica (one per
# ORM thread, aioapi/db.py), or workers x DB_POOL_MAX_SIZE with DB_POOL=1.
workers = budget.api_workers(env)

# aiohttp's keepalive_timeout. Longer than nginx's upstream keepalive_timeout
# (60 s), so nginx closes idle connections and never reuses a closed one.
keepalive = env.int("GUNICORN_API_KEEPALIVE_SECONDS", default=75)
# The worker's loop beats once a second; silent this long means the loop is
# blocked (sync work on it), and the worker is replaced.
timeout = env.int("GUNICORN_API_TIMEOUT_SECONDS", default=30)
# On SIGTERM aiohttp stops accepting and gives running requests 95 % of this to
# finish. compose.yml's stop_grace_period must be longer.
graceful_timeout = env.int("GUNICORN_API_GRACEFUL_TIMEOUT_SECONDS", default=30)

# An async worker serves far more requests than a sync one; recycle it rarely, and
# with jitter, so the workers never restart together: a recycling worker drains
# and stops accepting until its replacement is up (aioapi/worker.py). A low count
# came round every few seconds under load, often for both workers at once; memory
# stays flat without recycling (bench/results/2026-11-21-soak/). 0 turns it off.
max_requests = env.int("GUNICORN_API_MAX_REQUESTS", default=1_000_000)
max_requests_jitter = env.int("GUNICORN_API_MAX_REQUESTS_JITTER", default=100_000)

# The factory runs in each worker after the fork (see wsgi_app): never preload.
preload_app = False
# The heartbeat file on tmpfs, not on a container's overlay filesystem.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# No forwarded_allow_ips: aiohttp ignores it. aioapi believes X-Forwarded-For only
# from the peers in API_TRUSTED_PROXIES (aioapi/forwarded.py).

# aiohttp writes the access log with its own format syntax (not Gunicorn's
# %(h)s), every value escaped (aioapi/access_log.py): %a is the client (a trusted
# proxy's last X-Forwarded-For hop, else the peer), %{peer}a the connection's peer,
# and the chain as sent is a quoted field of its own. An empty
# GUNICORN_API_ACCESS_LOG turns it off (bench runs do).
accesslog = env.str("GUNICORN_API_ACCESS_LOG", default="-") or None
access_log_format = env.str(
    "GUNICORN_API_ACCESS_LOG_FORMAT",
    default=(
        '%a %{peer}a "%{X-Forwarded-For}i" "%r" %s %b %Tfs "%{User-Agent}i" rid=%{X-Request-ID}i'
    ),
)
errorlog = "-"
loglevel = env.str("GUNICORN_LOG_LEVEL", default="info")

# Recent Gunicorn opens a control socket under $HOME by default; two servers of one
# user would fight over it. Off unless a path is given.
control_socket = env.str("GUNICORN_API_CONTROL_SOCKET", default="")
control_socket_disable = not control_socket


# The request counters of every worker, summed by whichever one is scraped
# (aioapi/metrics.py): prometheus-client's multiprocess mode, in a directory
# emptied before the first worker starts. Prepared in the master's start hook, not
# when this file is read: reading it (gunicorn --check-config, a test reading its
# log format) must not switch the reader's own process to multiprocess mode.
def on_starting(server: Any) -> None:
    metrics_dir.prepare(os.environ, "mymoviedb-api-metrics-")


def child_exit(server: Any, worker: Any) -> None:
    """A worker exited: its live gauges go; its counters stay in the totals."""
    metrics_dir.worker_exited(worker.pid)


# More connections than PostgreSQL allows would fail requests under load, not at
# start: refuse now, naming the numbers (deploy/budget.py).
budget.refuse_over_budget()
