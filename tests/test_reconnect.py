"""mymoviedb/reconnect.py: a unit of work whose connection died runs again only when safe.

The connection is killed for real (``pg_terminate_backend`` from another one), as a
restart kills it: the next statement on it fails without a SQLSTATE.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import OperationalError, connection, connections, transaction

from movies.models import Genre
from mymoviedb.reconnect import is_read, retrying

pytestmark = [
    pytest.mark.postgres(reason="kills a server connection (pg_terminate_backend)"),
    pytest.mark.django_db(transaction=True),
]


def kill_my_connection() -> None:
    """Terminate this thread's connection to ``default`` from another connection."""
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()


def counted(function: Callable[[], object]) -> tuple[Callable[[], object], list[int]]:
    calls: list[int] = []

    def call() -> object:
        calls.append(1)
        return function()

    return call, calls


def test_a_read_on_a_dead_connection_runs_once_more() -> None:
    kill_my_connection()
    read, calls = counted(lambda: Genre.objects.count())
    assert retrying(read)() == 0
    assert len(calls) == 2


def test_a_write_in_a_transaction_broken_before_commit_runs_once_more() -> None:
    def create() -> object:
        with transaction.atomic():
            Genre.objects.create(name="Written once", slug="written-once")
            if len(calls) == 1:
                kill_my_connection()
            return Genre.objects.filter(slug="written-once").count()

    write, calls = counted(create)
    # The first transaction died with its connection: nothing of it was applied.
    assert retrying(write)() == 1
    assert len(calls) == 2
    assert list(Genre.objects.values_list("slug", flat=True)) == ["written-once"]


def test_a_write_on_a_connection_the_server_closed_is_not_sent_but_run_again() -> None:
    # Autocommit: sent, it could have committed before the connection broke. The
    # server's end is in the socket before anything is sent: nothing was.
    kill_my_connection()
    write, calls = counted(lambda: Genre.objects.create(name="Once", slug="once").slug)
    assert retrying(write)() == "once"
    assert len(calls) == 2
    assert list(Genre.objects.values_list("slug", flat=True)) == ["once"]


def test_a_committed_write_is_never_run_twice() -> None:
    def create_then_read() -> object:
        Genre.objects.create(name="Committed", slug="committed")  # autocommit
        kill_my_connection()
        return Genre.objects.count()

    write, calls = counted(create_then_read)
    with pytest.raises(OperationalError):
        retrying(write)()
    assert len(calls) == 1
    connection.close()
    assert list(Genre.objects.values_list("slug", flat=True)) == ["committed"]


def test_a_statement_error_is_not_run_again() -> None:
    def bad() -> object:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1/0")
        return None

    call, calls = counted(bad)
    with pytest.raises(Exception, match="division by zero"):
        retrying(call)()
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("sql", "read"),
    [
        ("SELECT 1", True),
        (" (SELECT 1) UNION (SELECT 2)", True),
        ('SAVEPOINT "s1"', True),
        ("SET statement_timeout = 1", True),
        ("INSERT INTO t VALUES (1)", False),
        ("WITH x AS (DELETE FROM t RETURNING 1) SELECT * FROM x", False),
        ("", False),
    ],
)
def test_what_counts_as_a_read(sql: str, read: bool) -> None:
    assert is_read(sql) is read
