"""bench/'s django-asgi and drf contenders: their plan rows, their commands, the
order-parity verification of drf, and one short run of both on PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

import orjson
import psycopg
import pytest
from psycopg import sql

from bench import plan, verify
from bench.catalogue import maintenance_url
from bench.records import server_record
from bench.servers import REPO, server_specs
from tests.test_bench import OPTIONS

PATHS = [verify.HttpRequest("GET", "/movies/?limit=3")]
DRF_PATHS = [verify.HttpRequest("GET", "/drf/movies/?limit=3")]


def page(*films: tuple[int, str]) -> bytes:
    return orjson.dumps({"items": [{"id": i, "title": t, "year": 1} for i, t in films]})


def drf_page(*films: tuple[int, str]) -> bytes:
    results = [{"id": i, "title": t, "genres": []} for i, t in films]
    return orjson.dumps({"count": 9, "next": None, "previous": None, "results": results})


FILMS = ((3, "Alien"), (1, "Aliens"), (2, "Heat"))


# -- order parity ---------------------------------------------------------------


def reference() -> verify.Reference:
    ref = verify.Reference()
    ref.check("list-10", "django", PATHS, [verify.Answer(200, page(*FILMS), '"e"')], [200])
    return ref


def test_drf_with_the_same_films_in_the_same_order_passes() -> None:
    answers = [verify.Answer(200, drf_page(*FILMS))]

    checked = reference().check("list-10", "drf", DRF_PATHS, answers, [200], by="order")

    assert checked == "1 with the films of django, in the same order"


def test_drf_in_another_order_is_refused() -> None:
    swapped = [verify.Answer(200, drf_page(FILMS[1], FILMS[0], FILMS[2]))]

    with pytest.raises(verify.VerificationError) as error:
        reference().check("list-10", "drf", DRF_PATHS, swapped, [200], by="order")

    assert "films differ from position 0 (3 vs 3 films)" in str(error.value)


def test_drf_with_a_film_missing_or_another_film_is_refused() -> None:
    ref = reference()
    shorter = [verify.Answer(200, drf_page(*FILMS[:2]))]
    with pytest.raises(verify.VerificationError, match="from position 2"):
        ref.check("list-10", "drf", DRF_PATHS, shorter, [200], by="order")
    detail = [verify.HttpRequest("GET", "/movies/3/")]
    alien = verify.Answer(200, orjson.dumps({"id": 3, "title": "Alien"}))
    ref.check("detail", "django", detail, [alien], [200])
    other = verify.Answer(200, orjson.dumps({"id": 3, "title": "Heat", "credits": []}))
    with pytest.raises(verify.VerificationError, match="films differ"):
        ref.check("detail", "drf", detail, [other], [200], by="order")


def test_order_parity_needs_a_reference_and_never_becomes_one() -> None:
    ref = verify.Reference()
    answers = [verify.Answer(200, drf_page(*FILMS))]
    with pytest.raises(verify.VerificationError, match="none was verified before it"):
        ref.check("list-10", "drf", DRF_PATHS, answers, [200], by="order")
    # Still no reference: the next server's bytes become it.
    first = ref.check("list-10", "django", PATHS, [verify.Answer(200, page(*FILMS))], [200])
    assert first == "1 answers recorded as the reference"


# -- plan and commands ----------------------------------------------------------


def test_the_default_plan_runs_every_contender_where_it_can_serve() -> None:
    default = plan.build_plan("default")
    by_scenario: dict[str, set[str]] = {}
    for run in default.runs:
        by_scenario.setdefault(run.scenario, set()).add(run.server)

    for scenario in plan.DRF_SCENARIOS:
        assert set(plan.CONTENDERS) <= by_scenario[scenario]
    for scenario in ("list-filtered", "detail-busiest", "search", "conditional"):
        assert by_scenario[scenario] == {plan.DJANGO, plan.DJANGO_ASGI, plan.AIOAPI}
    assert by_scenario["people"] == set(plan.PEOPLE_SERVERS)
    for scenario in ("detail-busiest", "people"):
        counts = {
            r.connections for r in default.runs if (r.scenario, r.latency_ms) == (scenario, 0)
        }
        assert counts == set(plan.TWO_POINTS)
    assert by_scenario["write-mix"] == {plan.AIOAPI}
    assert default.servers(0.0)[:4] == [plan.DJANGO, plan.DJANGO_ASGI, plan.DRF, plan.AIOAPI]
    assert default.estimate_seconds() <= 30 * 60
    quick = plan.build_plan("quick")
    assert set(plan.CONTENDERS) <= {r.server for r in quick.runs}


def test_both_run_on_the_same_cores_workers_and_pool() -> None:
    specs = server_specs("postgres://u@h/db", 2.0, OPTIONS)
    django, asgi, drf = specs[plan.DJANGO], specs[plan.DJANGO_ASGI], specs[plan.DRF]

    assert asgi.argv[asgi.argv.index("--worker-class") + 1] == "uvicorn_worker.UvicornWorker"
    assert asgi.argv[3] == "mymoviedb.asgi:application"
    # As Django's databases page says for ASGI: its pool, not persistent connections.
    assert (asgi.env["DB_POOL"], asgi.env["DB_POOL_MAX_SIZE"]) == ("1", "4")
    assert asgi.env["SERVE_STATIC"] == "0"
    assert "--access-logfile" not in asgi.argv
    # drf: the very command of django, on its own port.
    assert [a for a in drf.argv if "127.0.0.1:" not in a] == [
        a for a in django.argv if "127.0.0.1:" not in a
    ]
    assert drf.env == django.env
    assert len({spec.port for spec in specs.values()}) == len(specs)
    for spec in (asgi, drf):
        assert spec.argv[spec.argv.index("--workers") + 1] == "1"
        assert spec.env["SIMULATED_DB_LATENCY_MS"] == "2"
    assert (asgi.verification, drf.verification) == ("bytes", "order")
    record = server_record(drf, OPTIONS.cpus)
    assert record["verification"] == "order"
    assert "not the server alone" in record["note"]
    assert server_record(asgi, OPTIONS.cpus)["note"] is None


# -- end to end -----------------------------------------------------------------


@pytest.fixture
def contenders_database_url() -> Iterator[str]:
    """A database of its own on the test server, dropped afterwards."""
    name = "mymoviedb_bench_contenders"
    url = urlsplit(os.environ.get("DATABASE_URL", ""))._replace(path=f"/{name}").geturl()
    yield url
    with psycopg.connect(maintenance_url(url), autocommit=True) as conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(drop.format(sql.Identifier(name)))


@pytest.mark.postgres
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt install wrk)")
def test_both_start_pass_verification_and_take_load(tmp_path, contenders_database_url) -> None:
    command = [
        sys.executable, "-m", "bench", "--quick", "--conditions", "0",
        "--scenarios", "list-10,list-100,detail", "--servers", "django,django-asgi,drf",
        "--duration", "2", "--connections", "8", "--label", "contenders",
        "--database-url", contenders_database_url, "--recreate-db",
        "--source", str(REPO / "movies" / "fixtures" / "sample-movies.json"), "--synthetic", "0",
        "--cpus", "0", "--port-base", "20940", "--results-dir", str(tmp_path),
    ]  # fmt: skip
    completed = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=180, check=False
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    [folder] = tmp_path.iterdir()
    document = json.loads((folder / "results.json").read_text())
    assert [r["server"] for r in document["runs"]] == ["django", "django-asgi", "drf"]
    assert all(r["requests"] > 0 and not r["problems"] for r in document["runs"])
    checked = {(v["server"], v["scenario"]): v["checked"] for v in document["verification"]}
    for scenario in ("list-10", "list-100", "detail"):
        assert checked[("django-asgi", scenario)].endswith("identical to django")
        assert checked[("drf", scenario)].endswith("with the films of django, in the same order")
    assert "uvicorn_worker.UvicornWorker" in document["servers"]["django-asgi"]["command"]
    assert document["servers"]["drf"]["note"]
    assert "**note**" in (folder / "report.md").read_text()
    assert document["leftovers"] == []
