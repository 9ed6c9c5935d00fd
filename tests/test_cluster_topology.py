"""The local cluster's front half: nginx balancing the API processes, the admin and
the API working through PgBouncer in transaction mode, and exports streaming
beside it."""

from __future__ import annotations

import http.client
import re
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import psutil
import psycopg

from deploy.cluster import DELAYED, STANDBY, LocalCluster
from deploy.postgres import Cluster
from deploy.processes import Server
from tests.cluster import IN_POSTGRES_SUITE, wait_for
from tests.live import AdminSession, Reply, fetch

LIST_METRIC = re.compile(
    r'^api_http_requests_total\{method="GET",route="/api/movies",status="200"\} (\S+)$', re.M
)

pytestmark = IN_POSTGRES_SUITE


def list_requests(port: int) -> float:
    match = LIST_METRIC.search(fetch(port, "/metrics").body.decode())
    return float(match[1]) if match else 0.0


def test_nginx_spreads_api_requests_over_every_process(local_cluster: LocalCluster) -> None:
    ports = local_cluster.api_ports
    before = [list_requests(port) for port in ports]
    tls = ssl.create_default_context(cafile=str(local_cluster.root / "cert.pem"))
    for _ in range(20):
        connection = http.client.HTTPSConnection(
            "localhost", local_cluster.ports["nginx-https"], context=tls, timeout=10
        )
        connection.request("GET", "/api/movies?limit=2")
        response = connection.getresponse()
        assert response.status == 200, response.read()
        response.read()
        connection.close()
    served = [list_requests(port) - seen for port, seen in zip(ports, before, strict=True)]
    assert sum(served) == 20
    assert all(count > 0 for count in served), served


def test_the_admin_works_through_pgbouncer(local_cluster: LocalCluster) -> None:
    session = AdminSession(local_cluster.ports["admin"])
    session.login(local_cluster.curator.username, local_cluster.curator.password)
    page = session.get("/admin/movies/movie/")
    assert page.status == 200
    [[count]] = local_cluster.primary.psql("SELECT count(*) FROM movies_movie")
    assert f"{count} movies".encode() in page.body


def test_an_export_behind_pgbouncer_streams_from_a_direct_connection_to_the_primary(
    local_cluster: LocalCluster,
) -> None:
    """Through PgBouncer Django cannot keep a server-side cursor and would fetch the
    whole export at once: the primary's exports DECLARE theirs on a connection of the
    API worker's own. Caught mid-export (its genre query waits for a lock the test
    holds), since that connection closes when the export ends."""
    primary = local_cluster.primary
    api = local_cluster.start_api("export-on-pgbouncer", DATABASE_REPLICA_URLS="")
    replies: list[Reply] = []
    try:
        with statements_logged([primary]), psycopg.connect(primary.url()) as locker:
            offset = primary.log.stat().st_size
            locker.execute("LOCK TABLE movies_movie_genres IN ACCESS EXCLUSIVE MODE")
            export = threading.Thread(target=lambda: replies.append(fetch(api.port, EXPORT)))
            export.start()
            waiting = "SELECT pid, client_port FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            wait_for(lambda: bool(primary.psql(waiting)), timeout=10)
            [[pid, port]] = primary.psql(waiting)
            ports = worker_ports(api)
            locker.rollback()
            export.join(timeout=20)
        assert int(pid) in cursor_backends(primary, offset)
        assert int(port) in ports, (port, ports)
    finally:
        api.stop()
    assert_whole_export(local_cluster, replies)


def test_an_export_from_the_replicas_streams_from_a_cursor_on_a_standby(
    local_cluster: LocalCluster,
) -> None:
    api = local_cluster.servers["api-0"]
    standbys = local_cluster.standbys
    with statements_logged(standbys.values()):
        offsets = {name: server.log.stat().st_size for name, server in standbys.items()}
        replies = [fetch(api.port, EXPORT)]
    declared = {name: cursor_backends(server, offsets[name]) for name, server in standbys.items()}
    # Without a server-side cursor there is no DECLARE on either standby.
    [(name, pids)] = [(name, pids) for name, pids in declared.items() if pids] or [("-", set())]
    assert name in {STANDBY, DELAYED}, declared
    # The replica's connection stays open after the export: it is the worker's.
    listed = ",".join(map(str, pids))
    rows = standbys[name].psql(f"SELECT client_port FROM pg_stat_activity WHERE pid IN ({listed})")
    assert {int(port) for [port] in rows} <= worker_ports(api)
    assert_whole_export(local_cluster, replies)


EXPORT = "/api/movies/export?format=ndjson"


def assert_whole_export(cluster: LocalCluster, replies: list[Reply]) -> None:
    [[count]] = cluster.primary.psql("SELECT count(*) FROM movies_movie")
    [reply] = replies
    assert reply.status == 200
    *films, trailer = reply.body.splitlines()
    assert len(films) == int(count)
    assert trailer == b'{"_trailer":{"complete":true,"rows":%d}}' % int(count)


DECLARE = re.compile(r"\[(\d+)\] LOG:  (?:statement|execute [^:]*): DECLARE ")


@contextmanager
def statements_logged(servers: Iterable[Cluster]) -> Iterator[None]:
    """``log_statement = 'all'`` on ``servers`` for the block (a reload; standbys too,
    where ALTER SYSTEM is refused)."""
    servers = list(servers)
    for server in servers:
        offset = server.log.stat().st_size
        with (server.data / "postgresql.auto.conf").open("a") as auto_conf:
            auto_conf.write("log_statement = 'all'\n")
        server.run("pg_ctl", "-D", str(server.data), "reload")
        _wait_for_reload(server, offset)
    try:
        yield
    finally:
        for server in servers:
            conf = server.data / "postgresql.auto.conf"
            conf.write_text(conf.read_text().replace("log_statement = 'all'\n", ""))
            server.run("pg_ctl", "-D", str(server.data), "reload")


def _wait_for_reload(server: Cluster, offset: int, timeout: float = 15.0) -> None:
    # pg_ctl reload only signals the postmaster, which rereads the file and then
    # signals its backends: a statement sent meanwhile went unlogged (a flaky CI run).
    # The postmaster logs the change once it has it; its backends follow at once.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with server.log.open("rb") as log:
            log.seek(offset)
            if b'parameter "log_statement" changed to "all"' in log.read():
                time.sleep(0.5)
                return
        time.sleep(0.1)
    raise AssertionError(f"{server.data}: log_statement was not reloaded in {timeout:.0f} s")


def cursor_backends(server: Cluster, offset: int) -> set[int]:
    """The backends whose DECLARE ``server`` logged after ``offset``."""
    with server.log.open("rb") as log:
        log.seek(offset)
        text = log.read().decode(errors="replace")
    return {int(pid) for pid in DECLARE.findall(text)}


def worker_ports(api: Server) -> set[int]:
    """The local ports of the API worker's TCP connections."""
    [worker] = psutil.Process(api.process.pid).children()
    return {connection.laddr.port for connection in worker.net_connections(kind="tcp")}
