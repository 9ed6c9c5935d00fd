"""Django settings for mymoviedb, read from the environment (twelve-factor).

Every setting has a safe development default, except that a production run
(``DEBUG`` off) refuses to start without ``SECRET_KEY``. ``DATABASE_URL``
selects the database; without it an SQLite file under ``var/`` is used.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("MYMOVIEDB_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()

DEBUG: bool = env.bool("DEBUG", default=False)

_DEV_SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"
SECRET_KEY: str = env.str("SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Set SECRET_KEY in the environment for a production run, "
        "or set DEBUG=1 for local development."
    )

ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])
TIME_ZONE: str = env.str("TIME_ZONE", default="UTC")
USE_TZ = True
LANGUAGE_CODE = "en-us"
USE_I18N = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "axes",  # the admin login's throttle (below)
    "movies",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A NUL in an admin URL's query is a 400, never a database error (movies/admin/lookups.py).
    "movies.admin.lookups.AdminNulMiddleware",
    # A down database is a 503 with Retry-After, not a 500 (admin and /movies/).
    "mymoviedb.middleware.DatabaseUnavailableMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its 429 page.
    "axes.middleware.AxesMiddleware",
]
# Serves the admin's static files under Gunicorn; nginx serves them in deploy/.
# WhiteNoise's middleware is sync only: under ASGI it would send every request to a
# thread and back, so bench's ASGI server turns it off (it serves no static file).
if env.bool("SERVE_STATIC", default=True):
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "mymoviedb.urls"
WSGI_APPLICATION = "mymoviedb.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database_from_url(url: str, *, transaction_pooled: bool = False) -> dict[str, Any]:
    """Build one database from a URL (``DATABASE_URL`` or a replica), pooled on PostgreSQL.

    Both servers reuse connections: a new PostgreSQL connection costs ~5 ms here,
    more than a whole list query. The pool hands a connection to a thread for one
    request (or one bridged ORM call) and takes it back afterwards.
    ``transaction_pooled``: the URL is PgBouncer in transaction mode, not PostgreSQL.
    """
    database = env.db_url_config(url)
    engine = database["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        Path(database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        database["OPTIONS"] = {
            # WAL lets the admin and the API read while the other writes.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": env.int("SQLITE_BUSY_TIMEOUT_SECONDS", default=20),
        }
        database["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    elif engine == "django.db.backends.postgresql":
        options: dict[str, Any] = dict(database.get("OPTIONS", {}))
        options.setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT_SECONDS", default=3))
        if env.bool("DB_POOL", default=True):
            options["pool"] = {
                "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
                "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
                # How long a request waits for a connection before failing. Threads
                # never outnumber the pool, so a wait means the database is down: the
                # request becomes a 503 after this long (tests/test_faults_database.py).
                "timeout": env.float("DB_POOL_TIMEOUT_SECONDS", default=2.0),
                # psycopg's reconnection backoff doubles up to this long (default 300 s):
                # after a long outage the next attempt could come minutes after the
                # database is back. Bounded, recovery takes a few seconds.
                "reconnect_timeout": env.float("DB_POOL_RECONNECT_TIMEOUT_SECONDS", default=5.0),
                "max_idle": env.float("DB_POOL_MAX_IDLE_SECONDS", default=300.0),
            }
            database["CONN_MAX_AGE"] = 0  # required by Django's pool
            # Django makes this the pool's check: a round trip at every checkout.
            # Off by default, as in Django: it costs a round trip per request (its
            # CPU: bench/results/2026-12-05-lean-budget-persistent/budget.md), and a
            # restart costs no request without it: a request whose pooled
            # connection turns out dead runs again on a new one, and the pool's
            # idle ones are checked then (mymoviedb/reconnect.py).
            database["CONN_HEALTH_CHECKS"] = env.bool("DB_POOL_CHECK", default=False)
        else:
            # One connection per thread, kept open: checked before a request reuses
            # it only with DB_CONN_HEALTH_CHECKS (a round trip per request).
            database["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=600)
            database["CONN_HEALTH_CHECKS"] = env.bool("DB_CONN_HEALTH_CHECKS", default=False)
        # PgBouncer in transaction mode cannot keep a server-side cursor open. Only
        # the aliases behind it lose them: exports stream from the others
        # (movies.export.streaming_alias).
        database["DISABLE_SERVER_SIDE_CURSORS"] = transaction_pooled
        # Server-side prepared statements for movies.prepared's statements (Django's
        # own cursors bind on the client and are never prepared): psycopg PREPAREs
        # one the Nth time a connection runs it, and PostgreSQL then skips parsing
        # and planning it. Off behind PgBouncer, whose transaction mode would hand
        # the next query to a server that never saw the PREPARE.
        options["prepare_threshold"] = _prepare_threshold(
            env.str("DB_PREPARE_THRESHOLD", default="off" if transaction_pooled else "2")
        )
        database["OPTIONS"] = options
    return database


def _prepare_threshold(text: str) -> int | None:
    """``DB_PREPARE_THRESHOLD``: a whole number of runs before a PREPARE, or "off"."""
    if text.strip().lower() == "off":
        return None
    if not text.strip().isdigit():
        raise ImproperlyConfigured(
            f"DB_PREPARE_THRESHOLD must be a whole number of runs (0 or more) or 'off', "
            f"not {text!r}."
        )
    return int(text)


DATABASES = {
    # An empty DATABASE_URL counts as unset: the SQLite file under var/.
    "default": _database_from_url(
        env.str("DATABASE_URL", default="") or f"sqlite:///{VAR_DIR / 'mymoviedb.sqlite3'}",
        transaction_pooled=env.bool("DB_DISABLE_SERVER_SIDE_CURSORS", default=False),
    )
}
DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default=None)}
# Read replicas (deploy/README.md): "replica_0", "replica_1", ... take the reads
# that mymoviedb.routers.ReplicaRouter sends them; every write goes to "default".
# Straight to PostgreSQL unless DB_REPLICA_DISABLE_SERVER_SIDE_CURSORS says they
# too are behind a transaction pooler.
for _index, _url in enumerate(env.list("DATABASE_REPLICA_URLS", default=[])):
    DATABASES[f"replica_{_index}"] = _database_from_url(
        _url, transaction_pooled=env.bool("DB_REPLICA_DISABLE_SERVER_SIDE_CURSORS", default=False)
    )
if len(DATABASES) > 1:
    DATABASE_ROUTERS = ["mymoviedb.routers.ReplicaRouter"]
# A replica further behind than this (measured: mymoviedb/replication.py) gets no
# reads that carry no consistency token; the primary or another replica serves them.
DATABASE_REPLICA_MAX_LAG_SECONDS: float = env.float("DATABASE_REPLICA_MAX_LAG_SECONDS", default=5.0)
# PostgreSQL itself when DATABASE_URL is PgBouncer: LISTEN (aioapi.listener) needs a
# session of its own, which transaction pooling does not keep. Empty: DATABASE_URL.
DATABASE_DIRECT_URL: str = env.str("DATABASE_DIRECT_URL", default="")
# Behind PgBouncer, the primary's exports stream from this alias, on DATABASE_DIRECT_URL,
# where a server-side cursor keeps memory flat (movies.export.streaming_alias). It
# holds a connection only while exports run: its pool keeps none open, and without a
# pool (the API's default) each export connects and closes (~5 ms, next to seconds).
# Tests share the default test database.
DATABASE_DIRECT_ALIAS = "direct"
if DATABASE_DIRECT_URL and DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"]:
    _direct = DATABASES[DATABASE_DIRECT_ALIAS] = _database_from_url(DATABASE_DIRECT_URL)
    if "pool" in _direct["OPTIONS"]:
        _direct["OPTIONS"]["pool"]["min_size"] = 0
    else:
        _direct["CONN_MAX_AGE"] = 0
    _direct["TEST"] = {"MIRROR": "default"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Admin logins ---------------------------------------------------------------
# Proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated;
# "*" for any peer, where only a proxy can reach the server). Empty: the peer is the
# client. The login throttle and the logs use it (mymoviedb/clients.py).
TRUSTED_PROXIES: list[str] = env.list("TRUSTED_PROXIES", default=[])

# django-axes throttles the admin login: the ecosystem's standard, kept up with
# Django, with its failures in the database (shared by every worker and server,
# on SQLite and PostgreSQL alike) rather than a per-process counter.
# Locked on the pair (username, client address): guesses from one address lock that
# address out of that account only, so nobody's guesses lock a curator out from
# their own address. Guesses spread over many addresses are not stopped by this;
# a per-account lock would stop them but hand every stranger a way to lock any
# curator out. A lockout lasts AXES_COOLOFF_TIME from the failure that caused it,
# even if the guesses go on; a successful login clears the count.
AUTHENTICATION_BACKENDS = [
    "mymoviedb.logins.ThrottledLoginBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "mymoviedb.clients.client_address"
AXES_CLIENT_STR_CALLABLE = "mymoviedb.clients.login_failure_str"
# Failures and lockouts are still logged (warnings); this silences only axes' banner on
# every start of every command and worker.
AXES_VERBOSE = False
AXES_COOLOFF_MESSAGE = (
    "Too many failed logins to this account from your address: try again in 15 minutes."
)

# Messages live in the session, not in a cookie: a newly issued API token is
# shown once as a message and must never travel in a readable cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

STATIC_URL = env.str("STATIC_URL", default="/static/")
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))

# Behind nginx (deploy/nginx.conf), which sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT: bool = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE: bool = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE: bool = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS: int = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS: bool = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD: bool = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Where curators' browsers reach the API, for the admin's links to it: empty when
# nginx serves both under one host (deploy/nginx.conf), as /api/ of the admin's own.
API_PUBLIC_URL: str = env.str("API_PUBLIC_URL", default="").rstrip("/")

# HTTP caching of API and comparison-view responses.
API_CACHE_CONTROL: str = env.str("API_CACHE_CONTROL", default="public, max-age=0, must-revalidate")

# Exports streaming at once in this process (/movies/export/, movies/export_slots.py).
# Each holds one Gunicorn thread and one pooled connection for seconds to minutes,
# so by default they may take a quarter of the threads (at least 1), the same rule
# as aioapi's API_EXPORT_MAX_CONCURRENT: deploy/gunicorn_admin.conf.py, which knows
# the threads, sets it so. A variable of its own, not aioapi's: the two processes
# have thread pools of different sizes (4 gthread threads here, 8 ORM threads there
# by default), so one number could not fit both.
EXPORT_MAX_CONCURRENT: int = env.int("EXPORT_MAX_CONCURRENT", default=1)
if EXPORT_MAX_CONCURRENT < 1:
    raise ImproperlyConfigured("EXPORT_MAX_CONCURRENT must be at least 1.")
# An export whose client does not take a chunk within this many seconds is ended and
# frees its slot and thread (movies/export_views.py); aioapi's own is
# API_EXPORT_WRITE_TIMEOUT_SECONDS.
EXPORT_WRITE_TIMEOUT_SECONDS: float = env.float("EXPORT_WRITE_TIMEOUT_SECONDS", default=30.0)
if EXPORT_WRITE_TIMEOUT_SECONDS <= 0:
    raise ImproperlyConfigured(
        "EXPORT_WRITE_TIMEOUT_SECONDS must be a positive number of seconds, "
        f"not {EXPORT_WRITE_TIMEOUT_SECONDS!r}."
    )

# A request's whole body must arrive within this many seconds of its first read, or
# the answer is a 408 and the connection is closed (mymoviedb/body_deadline.py):
# Gunicorn's threads would otherwise wait on a slow body as long as its client likes.
REQUEST_BODY_TIMEOUT_SECONDS: float = env.float("REQUEST_BODY_TIMEOUT_SECONDS", default=30.0)
if REQUEST_BODY_TIMEOUT_SECONDS <= 0:
    raise ImproperlyConfigured("REQUEST_BODY_TIMEOUT_SECONDS must be a positive number of seconds.")

# Compiled read statements kept per process (movies/prepared.py): one per query
# shape and database alias. The API's shapes number in the hundreds at most.
PREPARED_STATEMENTS_MAX: int = env.int("PREPARED_STATEMENTS_MAX", default=1024)
if PREPARED_STATEMENTS_MAX < 1:
    raise ImproperlyConfigured("PREPARED_STATEMENTS_MAX must be at least 1.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
