"""The local cluster's front half: nginx balancing the API processes, and the admin
and the API working through PgBouncer in transaction mode."""

from __future__ import annotations

import http.client
import re
import ssl

from deploy.cluster import LocalCluster
from tests.cluster import IN_POSTGRES_SUITE
from tests.live import AdminSession, fetch

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


def test_an_export_works_through_pgbouncer(local_cluster: LocalCluster) -> None:
    [[count]] = local_cluster.primary.psql("SELECT count(*) FROM movies_movie")
    reply = fetch(local_cluster.ports["api-0"], "/api/movies/export?format=ndjson")
    assert reply.status == 200
    *films, trailer = reply.body.splitlines()
    assert len(films) == int(count)
    assert trailer == b'{"_trailer":{"complete":true,"rows":%d}}' % int(count)
