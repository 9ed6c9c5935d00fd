"""The scaled-out topology on one machine, from Debian's packages and deploy/'s configs.

    python -m deploy.cluster up [--api 2] [--delay 2] [--state FILE]
    python -m deploy.cluster status [--state FILE]
    python -m deploy.cluster down [--state FILE]

``up`` starts, in a new temporary directory and on free loopback ports:

* a primary PostgreSQL, a streaming standby and a second standby that replays
  every commit ``--delay`` seconds late (``recovery_min_apply_delay``), both
  made with ``pg_basebackup -R``; the catalogue database is migrated and holds
  the sample films and a demo curator;
* PgBouncer in transaction mode in front of the primary;
* ``--api`` aioapi processes (Gunicorn, deploy/gunicorn_api.conf.py, one worker
  each) reading from both standbys, and the Django admin
  (deploy/gunicorn_admin.conf.py), all through PgBouncer;
* nginx with deploy/nginx.conf (rendered as the image does) balancing the API
  processes, with a throw-away certificate.

It writes what it started (directories, ports, pids) to the state file, prints
it, and returns with everything running. ``down`` stops each server by its pid
(PostgreSQL by ``pg_ctl stop``), deletes the directory and the state file;
``status`` says what runs and how far each standby lags. As root, PostgreSQL
and PgBouncer run as the ``postgres`` user (both refuse root).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deploy.ports import free_port
from deploy.postgres import (
    Cluster,
    as_user,
    give_to,
    pgbouncer_ini,
    postgres_bindir,
    server_user,
)
from deploy.processes import (
    BIN,
    Curator,
    Server,
    django_environment,
    listens,
    manage,
    render_nginx,
    seed_database,
    self_signed_certificate,
    start_server,
    stop_group,
)

DATABASE = "mymoviedb"
DEFAULT_STATE = Path(tempfile.gettempdir()) / "mymoviedb-cluster.json"
STANDBY, DELAYED = "standby", "delayed"


@dataclass
class LocalCluster:
    """What ``up`` started. ``servers`` (live handles) exist only in the process that
    started them; everything else is in :meth:`state`, enough for ``down``."""

    root: Path
    primary: Cluster
    standbys: dict[str, Cluster]  # STANDBY and DELAYED
    apply_delay_seconds: float
    env: dict[str, str]  # the API processes' environment
    curator: Curator
    ports: dict[str, int] = field(default_factory=dict)  # server name: port
    servers: dict[str, Server] = field(default_factory=dict)

    @property
    def pgbouncer_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.ports['pgbouncer']}/{DATABASE}"

    @property
    def api_ports(self) -> list[int]:
        return [port for name, port in sorted(self.ports.items()) if name.startswith("api-")]

    def state(self) -> dict[str, Any]:
        pids = {name: server.process.pid for name, server in self.servers.items()}
        return {
            "root": str(self.root),
            "bindir": str(self.primary.bindir),
            "user": self.primary.user,
            "postgres": {
                name: {"data": str(cluster.data), "port": cluster.port}
                for name, cluster in {"primary": self.primary, **self.standbys}.items()
            },
            "apply_delay_seconds": self.apply_delay_seconds,
            "servers": {
                name: {"port": port, "pid": pids.get(name)} for name, port in self.ports.items()
            },
            "urls": {
                "https": f"https://localhost:{self.ports['nginx-https']}/",
                "primary": self.primary.url(),
                "pgbouncer": self.pgbouncer_url,
                **{name: cluster.url() for name, cluster in self.standbys.items()},
            },
            "curator": asdict(self.curator),
        }

    def start_server(
        self, name: str, command: list[str], port: int, env: dict[str, str] | None = None,
        **popen: Any,
    ) -> Server:  # fmt: skip
        """Start ``name`` with the cluster's environment plus ``env``, and keep it."""
        server = start_server(name, command, port, {**self.env, **(env or {})}, self.root, **popen)
        self.servers[name] = server
        self.ports[name] = port
        return server

    def start_pgbouncer(self, port: int | None = None) -> Server:
        """PgBouncer in transaction mode on the primary (again on its port: a restart)."""
        port = port or self.ports.get("pgbouncer") or free_port()
        config = self.root / "pgbouncer.ini"
        config.write_text(pgbouncer_ini(self.primary.port, port))
        return self.start_server(
            "pgbouncer", [shutil.which("pgbouncer") or "/usr/sbin/pgbouncer", str(config)], port,
            ready=listens,
            **as_user(self.primary.user),
        )  # fmt: skip

    def start_api(self, name: str, **env: str) -> Server:
        """An aioapi process (one Gunicorn worker); ``env`` adds to its environment."""
        port = free_port()
        command = [str(BIN / "gunicorn"), "--config", "deploy/gunicorn_api.conf.py"]
        gunicorn = {"GUNICORN_API_BIND": f"127.0.0.1:{port}", "GUNICORN_API_WORKERS": "1"}
        return self.start_server(name, command, port, env=gunicorn | env)

    def start_admin(self) -> Server:
        port = free_port()
        command = [str(BIN / "gunicorn"), "--config", "deploy/gunicorn_admin.conf.py"]
        # The admin reads from the primary: curators see their own changes at once.
        env = {"GUNICORN_ADMIN_BIND": f"127.0.0.1:{port}", "GUNICORN_ADMIN_WORKERS": "1",
               "GUNICORN_ADMIN_THREADS": "2", "DATABASE_REPLICA_URLS": ""}  # fmt: skip
        return self.start_server("admin", command, port, env=env)

    def start_nginx(self) -> Server:
        nginx = shutil.which("nginx")
        if nginx is None:
            raise RuntimeError("needs nginx: apt-get install nginx")
        certificate, key = self_signed_certificate(self.root)
        https, http = free_port(), free_port()
        variables = {
            "MYMOVIEDB_ADMIN_UPSTREAM": f"127.0.0.1:{self.ports['admin']}",
            # One upstream entry per process: the template's `server ${...};`
            # becomes `server a; server b;`.
            "MYMOVIEDB_API_UPSTREAM": "; server ".join(f"127.0.0.1:{p}" for p in self.api_ports),
            "MYMOVIEDB_STATIC_ROOT": str(self.root / "static"),
            "MYMOVIEDB_HTTP_PORT": f"127.0.0.1:{http}",
            "MYMOVIEDB_HTTPS_PORT": f"127.0.0.1:{https}",
            "MYMOVIEDB_SERVER_NAME": "localhost",
            "MYMOVIEDB_TLS_CERTIFICATE": str(certificate),
            "MYMOVIEDB_TLS_CERTIFICATE_KEY": str(key),
            "MYMOVIEDB_MAX_BODY_SIZE": "1m",
            "MYMOVIEDB_API_RATE_LIMIT": "off",
            "MYMOVIEDB_API_RATE": "50r/s",
            "MYMOVIEDB_API_BURST": "100",
        }
        main = render_nginx(self.root, "nginx", variables)
        command = [nginx, "-p", str(self.root), "-e", str(self.root / "nginx-error.log"),
                   "-c", str(main)]  # fmt: skip
        server = self.start_server("nginx-https", command, https, ready=listens)
        self.ports["nginx-http"] = http  # the same process: its pid is nginx-https's
        return server

    def stop(self) -> None:
        """Stop everything this process started and delete the directory."""
        for server in reversed(list(self.servers.values())):
            server.stop()
        self.servers.clear()
        for cluster in [*self.standbys.values(), self.primary]:
            if cluster.running():
                cluster.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def up(
    *,
    api_processes: int = 2,
    apply_delay_seconds: float = 2.0,
    api_env: dict[str, str] | None = None,
) -> LocalCluster:
    """Start the whole topology (see the module's docstring); stopped again on failure.
    ``api_env`` adds to the API processes' environment (bench.cluster capacity: no cache)."""
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("needs the PostgreSQL server binaries: apt-get install postgresql")
    user = server_user()
    root = Path(tempfile.mkdtemp(prefix="mymoviedb-cluster-"))
    # nginx's workers (nobody) read static files and buffer below it.
    root.chmod(0o755)
    give_to(root, user)
    clusters = {}
    for name in ("primary", STANDBY, DELAYED):
        (root / name).mkdir()
        give_to(root / name, user)
        clusters[name] = Cluster(bindir, root / name, free_port(), user, DATABASE)
    primary = clusters.pop("primary")
    cluster = LocalCluster(root, primary, clusters, apply_delay_seconds, {}, Curator("", "", ""))
    try:
        primary.initdb()
        primary.start()
        primary.psql(f"CREATE DATABASE {DATABASE}", database="postgres")
        setup = django_environment(primary.url(), root)
        cluster.curator = seed_database(setup)
        manage({**setup, "STATIC_ROOT": str(root / "static")}, "collectstatic", "--no-input", "-v0")
        clusters[STANDBY].clone_of(primary)
        clusters[DELAYED].clone_of(primary, apply_delay_seconds)
        for standby in clusters.values():
            standby.start()
        cluster.start_pgbouncer()
        cluster.env = django_environment(
            cluster.pgbouncer_url,
            root,
            DATABASE_DIRECT_URL=primary.url(),
            DATABASE_REPLICA_URLS=",".join(c.url() for c in clusters.values()),
            DB_DISABLE_SERVER_SIDE_CURSORS="1",
            STATIC_ROOT=str(root / "static"),
        )
        for index in range(api_processes):
            cluster.start_api(f"api-{index}", **(api_env or {}))
        cluster.start_admin()
        cluster.start_nginx()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def down(state: dict[str, Any]) -> None:
    """Stop what ``state`` lists, by pid, and delete its directory."""
    for server in reversed(list(state["servers"].values())):
        if server["pid"] is not None:
            stop_group(server["pid"])
    bindir, user = Path(state["bindir"]), state["user"]
    for postgres in reversed(list(state["postgres"].values())):
        data = Path(postgres["data"])
        if (data / "postmaster.pid").exists():
            Cluster(bindir, data.parent, postgres["port"], user).stop("fast")
    shutil.rmtree(state["root"], ignore_errors=True)


def status(state: dict[str, Any]) -> list[str]:
    """One line per server: up or down, and each standby's replay position and lag."""
    lines = []
    for name, server in state["servers"].items():
        lines.append(
            f"{name:12} :{server['port']:<5} {'up' if listens(server['port']) else 'DOWN'}"
        )
    bindir, user = Path(state["bindir"]), state["user"]
    for name, postgres in state["postgres"].items():
        server = Cluster(bindir, Path(postgres["data"]).parent, postgres["port"], user, DATABASE)
        if not listens(postgres["port"]):
            lines.append(f"{name:12} :{postgres['port']:<5} DOWN")
            continue
        lsn, lag = server.replay_status(standby=name != "primary")
        lines.append(
            f"{name:12} :{postgres['port']:<5} up  lsn {lsn}  last replayed commit {lag} s ago"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.cluster", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument(
        "--state", type=Path, default=DEFAULT_STATE, help="state file (%(default)s)"
    )
    parser.add_argument("--api", type=int, default=2, help="API processes (%(default)s)")
    parser.add_argument(
        "--delay", type=float, default=2.0, help="delayed standby's lag, s (%(default)s)"
    )
    args = parser.parse_args(argv)
    if args.command == "up":
        if args.state.exists():
            parser.error(f"{args.state} exists: `down` first (or --state elsewhere)")
        cluster = up(api_processes=args.api, apply_delay_seconds=args.delay)
        # Started in sessions of their own, the servers outlive this process.
        args.state.write_text(json.dumps(cluster.state(), indent=2))
        print(json.dumps(cluster.state(), indent=2))
        return 0
    if not args.state.exists():
        print(f"no cluster: {args.state} does not exist", file=sys.stderr)
        return 1
    state = json.loads(args.state.read_text())
    if args.command == "status":
        print("\n".join(status(state)))
        return 0
    down(state)
    args.state.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
