"""Gunicorn settings for the Django side: the curators' admin and the comparison views.

    gunicorn --config deploy/gunicorn_admin.conf.py

Every setting is read from a ``GUNICORN_ADMIN_*`` variable (a few shared ones
from ``GUNICORN_*``) with a default that suits one machine behind nginx
(deploy/nginx.conf); .env.example lists them all. Gunicorn ignores settings it
does not know, so this file also runs on the older releases pyproject allows.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import environ
from gunicorn import glogging

from deploy import budget
from mymoviedb.clients import client_from, escaped

env = environ.Env()

# The WSGI callable; a positional APP_MODULE on the command line replaces it.
wsgi_app = "mymoviedb.wsgi:application"
proc_name = "mymoviedb-admin"

# Loopback by default: only nginx should reach Gunicorn. Containers bind 0.0.0.0.
bind = env.list("GUNICORN_ADMIN_BIND", default=["127.0.0.1:8000"])
# Connections the kernel queues while every worker is busy; nginx holds the rest.
backlog = env.int("GUNICORN_ADMIN_BACKLOG", default=2048)

# gthread, not sync: threads keep nginx's upstream keep-alive connections open and
# overlap a request's database waits. Each process has its own connection pool, so
# the database sees up to workers x min(threads, DB_POOL_MAX_SIZE) connections.
worker_class = env.str("GUNICORN_ADMIN_WORKER_CLASS", default="gthread")
# Gunicorn's rule for blocking workers: (2 x cores) + 1.
workers = budget.admin_workers(env)
threads = budget.admin_threads(env)
# Exports take a quarter of the threads by default (mymoviedb/settings.py): only this
# file knows the threads, so it hands Django the number; the workers inherit it.
os.environ.setdefault("EXPORT_MAX_CONCURRENT", str(max(1, threads // 4)))

# Longer than nginx's upstream keepalive_timeout (60 s), so nginx, not Gunicorn,
# closes an idle connection and never reuses one that Gunicorn just closed.
keepalive = env.int("GUNICORN_ADMIN_KEEPALIVE_SECONDS", default=75)
# A worker silent this long (a stuck request) is killed and replaced.
timeout = env.int("GUNICORN_ADMIN_TIMEOUT_SECONDS", default=30)
# On SIGTERM, running requests get this long to finish. compose.yml's
# stop_grace_period must be longer, or Docker kills Gunicorn mid-request.
graceful_timeout = env.int("GUNICORN_ADMIN_GRACEFUL_TIMEOUT_SECONDS", default=30)

# Recycle a worker after this many requests (bounds slow leaks); the jitter keeps
# the workers from restarting all at once. 0 turns recycling off.
max_requests = env.int("GUNICORN_ADMIN_MAX_REQUESTS", default=1000)
max_requests_jitter = env.int("GUNICORN_ADMIN_MAX_REQUESTS_JITTER", default=100)

# Import the app in each worker after the fork: no connection or thread is ever
# shared across a fork, and a recycled worker loads fresh code.
preload_app = env.bool("GUNICORN_ADMIN_PRELOAD", default=False)
# The heartbeat file on tmpfs: on a container's overlay filesystem its writes can
# block long enough for the arbiter to think a healthy worker hangs.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# Peers trusted to say the scheme (X-Forwarded-Proto) to Gunicorn. Django reads the
# header itself (SECURE_PROXY_SSL_HEADER); this only sets wsgi.url_scheme. In
# compose only nginx can reach the container, so it is "*" there.
forwarded_allow_ips = env.str("GUNICORN_FORWARDED_ALLOW_IPS", default="127.0.0.1,::1")

# Access and error logs to stdout/stderr ("-"), where Docker and systemd collect
# them; an empty value turns the access log off.
accesslog = env.str("GUNICORN_ADMIN_ACCESS_LOG", default="-") or None
# The peer (nginx, behind it), request, status, size, duration in ms, user agent, the
# client (X-Forwarded-For believed only from TRUSTED_PROXIES, as Django does), the
# X-Forwarded-For header as sent, and nginx's request id, which joins this line to
# nginx's own. Every value a client wrote is quoted and escaped (Logger below).
access_log_format = env.str(
    "GUNICORN_ADMIN_ACCESS_LOG_FORMAT",
    default=(
        '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s" client=%(client)s '
        'forwarded_for="%({x-forwarded-for}i)s" rid="%({x-request-id}i)s"'
    ),
)
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
errorlog = "-"
loglevel = env.str("GUNICORN_LOG_LEVEL", default="info")


class EscapedAtoms(glogging.SafeAtoms):
    """Gunicorn's atoms with backslashes, control and non-ASCII characters escaped
    as well as quotes: Gunicorn escapes only quotes, so a value ending in a
    backslash would still close its field."""

    def __init__(self, atoms: dict[str, Any]) -> None:
        # Not SafeAtoms.__init__, which would escape the quotes a second time.
        dict.__init__(self, {k: escaped(v) if isinstance(v, str) else v for k, v in atoms.items()})


class Logger(glogging.Logger):
    """Gunicorn's logger: escaped access-log fields, with the client's address;
    no traceback for a write that timed out.

    The gthread worker keeps its client sockets blocking; only an export puts a
    timeout on one (movies/export_views.py), so a TimeoutError is a client that
    stopped reading (or a peer the kernel timed out). Gunicorn knows only EPIPE,
    ECONNRESET and ENOTCONN as a client's doing and logs anything else with a
    traceback at ERROR. The view has logged the export's end on one warning line;
    this goes to debug, where Gunicorn logs a client that left.
    """

    atoms_wrapper_class = EscapedAtoms

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> Any:
        atoms = super().atoms(resp, req, environ, request_time)
        peer, forwarded = environ.get("REMOTE_ADDR", ""), environ.get("HTTP_X_FORWARDED_FOR", "")
        atoms["client"] = client_from(str(peer), str(forwarded), TRUSTED_PROXIES)
        return atoms

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, TimeoutError):
            self.debug(msg + " %r", *args, error)
            return
        super().exception(msg, *args, **kwargs)


logger_class = Logger

# Recent Gunicorn opens a control socket under $HOME by default; two servers of one
# user would fight over it. Off unless a path is given.
control_socket = env.str("GUNICORN_ADMIN_CONTROL_SOCKET", default="")
control_socket_disable = not control_socket

# More connections than PostgreSQL allows would fail requests under load, not at
# start: refuse now, naming the numbers (deploy/budget.py).
budget.refuse_over_budget()
