"""``.env.example`` against the Django settings and both Gunicorn configs: each
``# NAME=value`` line shows the default the code passes to django-environ.
(aioapi.settings' variables: tests/test_aioapi_settings.py.)"""

from __future__ import annotations

import re
import runpy
from typing import Any

import environ
import pytest

from tests.test_deploy_compose import ENV_EXAMPLE, REPO, documented_names


def shown_defaults() -> dict[str, str]:
    """Each ``# NAME=value`` line of .env.example: the default it says the code uses
    (an empty value is one computed as the comment above it says, a line that starts
    ``# e.g.`` an example)."""
    lines = re.finditer(r"^# ?([A-Z][A-Z0-9_]*)=(.+)$", ENV_EXAMPLE.read_text(), re.MULTILINE)
    return {match[1]: match[2] for match in lines}


def defaults_read(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> dict[str, Any]:
    """Every variable the Django settings and both Gunicorn configs read through
    django-environ, with the default each passes, run in ``environment`` alone."""
    read: dict[str, Any] = {}
    get_value = environ.Env.get_value

    def recording(self: environ.Env, var: str, *args: Any, **kwargs: Any) -> Any:
        default = kwargs.get("default", args[1] if len(args) > 1 else environ.Env.NOTSET)
        read.setdefault(var, default)
        return get_value(self, var, *args, **kwargs)

    monkeypatch.setattr(environ.Env, "get_value", recording)
    for name in documented_names():
        # Set first, so that monkeypatch restores each as it was, whatever the
        # configs set meanwhile (gunicorn_admin.conf.py sets EXPORT_MAX_CONCURRENT).
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    for source in ("mymoviedb/settings.py", "deploy/gunicorn_admin.conf.py",
                   "deploy/gunicorn_api.conf.py"):  # fmt: skip
        runpy.run_path(str(REPO / source))
    return read


def as_shown(default: Any) -> str:
    """A default as .env.example writes it."""
    if isinstance(default, bool):
        return "1" if default else "0"
    if isinstance(default, float):
        return f"{default:g}"
    if isinstance(default, list | tuple):
        return ",".join(map(str, default))
    if isinstance(default, str) and default.startswith(str(REPO) + "/"):
        return default.removeprefix(str(REPO) + "/")  # a path in the project
    return str(default)


def test_env_example_shows_the_defaults_of_the_django_and_gunicorn_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Production-like: PostgreSQL, once pooled (the admin) and once not (the API).
    base = {"SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "movies.example.org",
            "DATABASE_URL": "postgres://user@db:5432/mymoviedb"}  # fmt: skip
    read = defaults_read(monkeypatch, base)
    for name, default in defaults_read(monkeypatch, base | {"DB_POOL": "0"}).items():
        read.setdefault(name, default)
    compared = {
        name: (shown, as_shown(read[name]))
        for name, shown in shown_defaults().items()
        if name in read and read[name] is not environ.Env.NOTSET
    }
    assert {"CONN_MAX_AGE", "GUNICORN_ADMIN_THREADS", "EXPORT_MAX_CONCURRENT"} <= set(compared)
    wrong = {name: pair for name, pair in compared.items() if pair[0] != pair[1]}
    assert not wrong, f".env.example (shown, code): {wrong}"
