"""``.env.example`` against aioapi.settings: every API variable listed once, with the
default the code uses (its header promises that its commented lines show them)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from aioapi.settings import ApiSettings
from tests.test_deploy_compose import ENV_EXAMPLE

SECTION = "# --- The API process (aioapi/settings.py)"
LINE = re.compile(r"^# ?(?P<name>API_[A-Z_]+)=(?P<value>.*)$")
# from_env turns the cache on by default on PostgreSQL, what compose.yml runs (and
# refuses it on SQLite): the example shows that default.
DEFAULTS_ON_POSTGRESQL = {"cache": True}
# The export cap defaults to a quarter of API_DB_THREADS: the example shows that number.
EFFECTIVE = {"export_max_concurrent": lambda settings: settings.export_limit}


def example_lines() -> dict[str, list[str]]:
    """Each commented ``API_*=value`` line of the API section, by variable."""
    text = ENV_EXAMPLE.read_text()
    section = text[text.index(SECTION) :].split("\n# ---", 1)[0]
    found: dict[str, list[str]] = {}
    for line in section.splitlines():
        match = LINE.match(line)
        if match:
            found.setdefault(match["name"], []).append(match["value"])
    return found


def effective(field: str, settings: ApiSettings) -> Any:
    shown = EFFECTIVE.get(field)
    return shown(settings) if shown is not None else getattr(settings, field)


@pytest.mark.parametrize("field", sorted(ApiSettings.model_fields))
def test_the_example_shows_each_default(field: str) -> None:
    name = ApiSettings.variable(field)
    values = example_lines().get(name)
    assert values is not None and len(values) == 1, f"{name} listed {values!r} in .env.example"
    shown = effective(field, ApiSettings.model_validate({field: values[0]}))
    default = DEFAULTS_ON_POSTGRESQL.get(field, effective(field, ApiSettings()))
    assert shown == default, name


def test_the_example_lists_no_variable_the_code_does_not_read() -> None:
    read = {ApiSettings.variable(field) for field in ApiSettings.model_fields}
    assert set(example_lines()) - read == set()
