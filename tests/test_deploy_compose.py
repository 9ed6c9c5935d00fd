"""compose.yml, deploy/Dockerfile and .env.example, checked without a Docker engine.

The compose specification's JSON schema (check-jsonschema's built-in copy, offline)
checks the shape. These tests check what a schema cannot see: that names point at
things that exist, that ports and timeouts agree, and that every setting the code
reads is documented. Compose's own interpolation (``${VAR:-default}``) is resolved
here with the defaults only, which is what an operator gets from .env.example.
"""

from __future__ import annotations

import importlib.util
import re
import runpy
import subprocess
import sys
from pathlib import Path
from string import Template
from typing import Any

import pytest
import yaml
from django.core.management import get_commands

from aioapi.settings import ApiSettings

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "compose.yml"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"
NGINX_CONF = REPO / "deploy" / "nginx.conf"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


def read_env_example() -> dict[str, str]:
    """The active (uncommented) assignments of .env.example, ``${NAME}`` expanded."""
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name] = Template(value).safe_substitute(values)
    return values


def documented_names() -> set[str]:
    """Every NAME that .env.example assigns, active or shown commented out."""
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))


def resolve(value: str) -> str:
    """Compose's interpolation with no variable set: defaults apply, ``$$`` is ``$``."""

    def one(match: re.Match[str]) -> str:
        if match["op"] in (":-", "-"):
            return match["arg"]
        pytest.fail(f"{match[0]} has no default: compose needs it from .env")

    return INTERPOLATION.sub(one, value).replace("$$", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def dockerfile_stages() -> dict[str, str]:
    """Stage name -> the Dockerfile text of that stage."""
    parts = re.split(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", DOCKERFILE.read_text(), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_compose_matches_the_compose_specification() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
        + [str(COMPOSE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_the_topology_has_its_services(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {"db", "db-standby", "pgbouncer", "migrate", "admin", "api", "nginx"}
    # Optional extras are behind a profile, so a plain `up` does not start them.
    assert services["pgbouncer"]["profiles"] == ["pgbouncer"]
    assert services["db-standby"]["profiles"] == ["replicas"]
    extras = {"pgbouncer", "db-standby"}
    assert all("profiles" not in services[name] for name in services if name not in extras)


def test_the_standby_is_a_basebackup_of_db_with_a_replication_rule(
    services: dict[str, dict[str, Any]],
) -> None:
    """As deploy/cluster.py makes its standbys; the scripts at least parse as sh."""
    standby, db = services["db-standby"], services["db"]
    assert standby["image"] == db["image"]
    scripts = [REPO / mount.split(":")[0] for mount in standby["volumes"] + db["volumes"]
               if mount.startswith("./") and mount.split(":")[0].endswith(".sh")]  # fmt: skip
    assert [path.name for path in scripts] == ["standby.sh", "replication-hba.sh", "roles.sh"]
    for script in scripts:
        subprocess.run(["sh", "-n", str(script)], check=True)
    assert "pg_basebackup -h db" in scripts[0].read_text()
    assert "-R" in scripts[0].read_text().split()
    assert "host replication all all scram-sha-256" in scripts[1].read_text()


def test_depends_on_targets_exist_and_can_meet_their_condition(
    services: dict[str, dict[str, Any]],
) -> None:
    checked = 0
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert "profiles" not in services[target], f"{name} needs optional {target}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            elif condition == "service_completed_successfully":
                # A job, not a server: it runs once and is never restarted.
                assert services[target]["restart"] == "no", target
            else:
                assert condition == "service_started", condition
            checked += 1
    assert checked == 7


def test_env_files_exist_or_are_made_from_the_example(
    services: dict[str, dict[str, Any]],
) -> None:
    """.env holds secrets, so it is never committed: .env.example is its template."""
    paths = {
        entry["path"] if isinstance(entry, dict) else entry
        for service in services.values()
        for entry in service.get("env_file", [])
    }
    assert paths == {".env"}
    assert ENV_EXAMPLE.is_file()
    assert ".env" in (REPO / ".gitignore").read_text().splitlines()
    # Everything compose insists on (${NAME:?...}) is assigned in the example.
    required = {m["name"] for m in INTERPOLATION.finditer(COMPOSE.read_text()) if m["op"] == ":?"}
    assert required == {
        "POSTGRES_PASSWORD", "DATABASE_DIRECT_URL", "DATABASE_OWNER_URL",
        "MYMOVIEDB_OWNER_PASSWORD", "MYMOVIEDB_APP_PASSWORD",
    }  # fmt: skip
    assert required <= set(read_env_example())


def test_published_ports_do_not_clash(services: dict[str, dict[str, Any]]) -> None:
    published: list[str] = []
    for name, service in services.items():
        for mapping in service.get("ports", []):
            host, container = resolve(mapping).rsplit(":", 1)
            published.append(host)
            # A scaled service cannot publish a fixed host port twice.
            assert int(resolve(str(service.get("deploy", {}).get("replicas", 1)))) == 1, name
    assert published == ["80", "443"]
    assert len(set(published)) == len(published)
    # The API scales: several replicas by default, reached only through nginx.
    api = services["api"]
    assert int(resolve(str(api["deploy"]["replicas"]))) >= 2
    assert "ports" not in api and "container_name" not in api


def test_each_server_listens_where_nginx_looks(services: dict[str, dict[str, Any]]) -> None:
    nginx_env = services["nginx"]["environment"]
    for name, variable in (("admin", "GUNICORN_ADMIN_BIND"), ("api", "GUNICORN_API_BIND")):
        port = services[name]["environment"][variable].rsplit(":", 1)[1]
        assert services[name]["expose"] == [port]
        upstream = resolve(nginx_env[f"MYMOVIEDB_{name.upper()}_UPSTREAM"])
        assert upstream == f"{name}:{port}"


def test_nginx_template_variables_are_all_given(services: dict[str, dict[str, Any]]) -> None:
    used = set(re.findall(r"\$\{(MYMOVIEDB_[A-Z_]+)\}", NGINX_CONF.read_text()))
    image_env = set(re.findall(r"\b(MYMOVIEDB_[A-Z_]+)=", dockerfile_stages()["nginx"]))
    compose_env = set(services["nginx"]["environment"])
    assert used == image_env | compose_env
    assert not image_env & compose_env, "one place for each value"
    assert "NGINX_ENVSUBST_FILTER=MYMOVIEDB_" in dockerfile_stages()["nginx"]


def _command_files(command: list[str]) -> list[Path]:
    return [REPO / part for part in command if part.endswith((".py", ".conf"))]


def test_commands_reference_real_modules_and_files(services: dict[str, dict[str, Any]]) -> None:
    dockerfile = DOCKERFILE.read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M)
    assert cmd is not None
    commands = [yaml.safe_load(cmd[1])]
    commands += [s["command"] for s in services.values() if "command" in s]
    assert len(commands) == 5
    django_commands = get_commands()
    for command in commands:
        assert all(path.is_file() for path in _command_files(command)), command
        if command[0] == "postgres":  # the db service's, with its settings
            assert command[1::2] == ["-c"] * (len(command) // 2), command
        elif command[0] == "gunicorn":
            config = runpy.run_path(str(REPO / command[command.index("--config") + 1]))
            module = config["wsgi_app"].split(":")[0]
            assert importlib.util.find_spec(module) is not None, f"{module} does not exist"
        else:
            assert command[:2] == ["python", "manage.py"], command
            assert command[2] in django_commands, command


def test_healthchecks_are_valid_commands(services: dict[str, dict[str, Any]]) -> None:
    for name in ("admin", "api"):
        test = services[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], name
        compile(test[3], f"<{name} healthcheck>", "exec")


def test_builds_point_at_real_files_and_stages(services: dict[str, dict[str, Any]]) -> None:
    stages = dockerfile_stages()
    assert set(stages) == {"wheels", "runtime", "nginx", "app"}
    # The last stage is the default target: the application, not nginx.
    assert list(stages)[-1] == "app"
    for name in ("migrate", "admin", "api", "nginx"):
        build = services[name]["build"]
        assert (REPO / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        assert build["target"] in stages
    for source in re.findall(r"^COPY (?!--from)(\S+) ", DOCKERFILE.read_text(), re.M):
        assert source == "." or (REPO / source).exists(), source
    assert "USER app:app" in stages["runtime"]


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".env", ".venv", "var", ".git", "deploy/tls"} <= ignored
    needed = {"manage.py", "pyproject.toml", "mymoviedb", "movies", "aioapi", "deploy"}
    assert not needed & ignored


def _gunicorn_setting(config: str, setting: str, service: dict[str, Any]) -> Any:
    given = {name: resolve(str(value)) for name, value in service.get("environment", {}).items()}
    env = {**read_env_example(), **given}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, str(value))
        return runpy.run_path(str(REPO / "deploy" / config))[setting]


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)(s|m)", duration)
    assert match is not None, duration
    return int(match[1]) * (60 if match[2] == "m" else 1)


@pytest.mark.parametrize(
    ("name", "config"), [("admin", "gunicorn_admin.conf.py"), ("api", "gunicorn_api.conf.py")]
)
def test_stop_grace_period_outlasts_gunicorn_graceful_timeout(
    services: dict[str, dict[str, Any]], name: str, config: str
) -> None:
    service = services[name]
    graceful = _gunicorn_setting(config, "graceful_timeout", service)
    timeout = _gunicorn_setting(config, "timeout", service)
    assert graceful >= timeout
    # Docker sends SIGKILL after stop_grace_period: Gunicorn must be done by then.
    assert _seconds(service["stop_grace_period"]) >= graceful + 5


def _names_read_by(path: Path) -> set[str]:
    pattern = r"(?:\benv\.\w+|Env\(\)\.\w+|\b_read|get_value)\(\s*\"([A-Z][A-Z0-9_]*)\""
    return set(re.findall(pattern, path.read_text()))


def test_env_example_lists_every_setting() -> None:
    sources = [
        REPO / "mymoviedb" / "settings.py",
        REPO / "deploy" / "gunicorn_admin.conf.py",
        REPO / "deploy" / "gunicorn_api.conf.py",
        REPO / "deploy" / "budget.py",
        *sorted((REPO / "aioapi").glob("*.py")),
    ]
    read = set().union(*(_names_read_by(path) for path in sources))
    # Sanity: the scan finds what it must, so an empty result cannot pass.
    assert {"SECRET_KEY", "DATABASE_REPLICA_URLS", "GUNICORN_API_WORKERS"} <= read
    read.discard("TEST_DATABASE_NAME")  # the test runner's, not a deployment's
    read |= {ApiSettings.variable(field) for field in ApiSettings.model_fields}
    compose_vars = {m["name"] for m in INTERPOLATION.finditer(COMPOSE.read_text())}
    template_vars = set(re.findall(r"\$\{(MYMOVIEDB_[A-Z_]+)\}", NGINX_CONF.read_text()))
    missing = (read | compose_vars | template_vars) - documented_names()
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_env_example_is_production_like_and_has_no_secret() -> None:
    values = read_env_example()
    # Empty on purpose: settings refuse to start without SECRET_KEY.
    assert values["SECRET_KEY"] == ""
    assert values["POSTGRES_PASSWORD"] == ""
    assert values["MYMOVIEDB_OWNER_PASSWORD"] == values["MYMOVIEDB_APP_PASSWORD"] == ""
    assert values["DEBUG"] == "0"
    assert values["DATABASE_URL"] == values["DATABASE_DIRECT_URL"]
    # The servers as the DML-only role, the migrations as the owner (deploy/roles.sql).
    assert values["DATABASE_DIRECT_URL"].startswith("postgres://mymoviedb_app:@db:5432/")
    assert values["DATABASE_OWNER_URL"].startswith("postgres://mymoviedb_owner:@db:5432/")
