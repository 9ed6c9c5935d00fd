"""The admin login's throttle (django-axes, mymoviedb/logins.py) and the client
address it keys on (mymoviedb/clients.py)."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.db.models import F
from django.test import Client, RequestFactory
from django.urls import reverse

from mymoviedb.clients import client_address, logged

pytestmark = pytest.mark.django_db

LOGIN = reverse("admin:login")
PASSWORD = "the-right-password-for-tests"
LOCKED = "Too many failed logins to this account from your address: try again in 15 minutes."


@pytest.fixture(autouse=True)
def static_root(settings: Any, tmp_path: Path) -> None:
    settings.STATIC_ROOT = tmp_path


@pytest.fixture
def curator() -> User:
    return User.objects.create_user("curator", password=PASSWORD, is_staff=True)


def log_in(password: str, address: str = "203.0.113.7", **headers: Any) -> Any:
    """One login to the admin, from a fresh browser at ``address``."""
    client = Client(REMOTE_ADDR=address, **headers)
    client.get(LOGIN)
    return client.post(LOGIN, {"username": "curator", "password": password, "next": "/admin/"})


def refused_as_wrong(response: Any) -> bool:
    return response.status_code == 200 and "Please enter the correct username" in (
        response.content.decode()
    )


def test_five_wrong_passwords_lock_the_account_out_from_that_address(curator: User) -> None:
    assert all(refused_as_wrong(log_in(f"guess {n}")) for n in range(4))
    fifth = log_in("guess 5")
    assert (fifth.status_code, fifth.content.decode()) == (429, LOCKED)
    right = log_in(PASSWORD)
    assert (right.status_code, right.content.decode()) == (429, LOCKED)
    assert "_auth_user_id" not in right.client.session


def test_another_address_is_not_locked_out(curator: User) -> None:
    for n in range(5):
        log_in(f"guess {n}")
    assert log_in(PASSWORD).status_code == 429
    elsewhere = log_in(PASSWORD, address="198.51.100.20")
    assert (elsewhere.status_code, elsewhere["Location"]) == (302, "/admin/")


def test_the_lockout_ends_after_the_cool_off(curator: User) -> None:
    for n in range(5):
        log_in(f"guess {n}")
    assert log_in(PASSWORD).status_code == 429
    # 15 minutes pass: the failures are older than the cool-off.
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=16))
    response = log_in(PASSWORD)
    assert (response.status_code, response["Location"]) == (302, "/admin/")


def test_guesses_during_the_lockout_do_not_extend_it(curator: User) -> None:
    for n in range(5):
        log_in(f"guess {n}")
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=14))
    assert log_in("still guessing").status_code == 429
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=2))
    assert log_in(PASSWORD).status_code == 302


def test_a_success_clears_the_failures(curator: User) -> None:
    for n in range(4):
        log_in(f"guess {n}")
    assert log_in(PASSWORD).status_code == 302
    assert all(refused_as_wrong(log_in(f"again {n}")) for n in range(4))


def test_a_forged_x_forwarded_for_changes_nothing_without_trusted_proxies(curator: User) -> None:
    for n in range(5):
        log_in(f"guess {n}", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert log_in(PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}


def test_behind_a_trusted_proxy_the_forwarded_client_is_locked_out(
    curator: User, settings: Any
) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    for n in range(5):
        log_in(f"guess {n}", address="10.1.2.3", HTTP_X_FORWARDED_FOR="forged, 192.0.2.1")
    assert log_in(PASSWORD, "10.1.2.3", HTTP_X_FORWARDED_FOR="192.0.2.1").status_code == 429
    # Another client behind the same proxy logs in.
    assert log_in(PASSWORD, "10.1.2.3", HTTP_X_FORWARDED_FOR="192.0.2.2").status_code == 302
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"192.0.2.1"}


def test_failures_are_logged_with_every_field_escaped(
    curator: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="axes")
    forged = '1.2.3.4"\n" 200 fake'
    client = Client(REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=forged, HTTP_USER_AGENT='a "b"')
    client.post(LOGIN, {"username": 'curator"\nforged line', "password": "x"})
    [failure] = [r.getMessage() for r in caplog.records if "New login failure" in r.getMessage()]
    assert failure == (
        'AXES: New login failure by username="curator\\"\\nforged line" client="203.0.113.7" '
        'peer="203.0.113.7" forwarded_for="1.2.3.4\\"\\n\\" 200 fake" '
        'user_agent="a \\"b\\"" path="/admin/login/". Created new record in the database.'
    )


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "client"),
    [
        ([], "203.0.113.7", "192.0.2.1", "203.0.113.7"),
        (["127.0.0.1"], "203.0.113.7", "192.0.2.1", "203.0.113.7"),
        (["127.0.0.1"], "127.0.0.1", "192.0.2.1", "192.0.2.1"),
        (["127.0.0.1"], "127.0.0.1", "198.51.100.9, 192.0.2.1", "192.0.2.1"),
        (["127.0.0.1", "10.0.0.0/8"], "127.0.0.1", "192.0.2.1, 10.0.0.5", "192.0.2.1"),
        (["127.0.0.1"], "127.0.0.1", "", "127.0.0.1"),
        (["127.0.0.1"], "127.0.0.1", "not an address", "127.0.0.1"),
        (["::1"], "::1", "2001:db8::1", "2001:db8::1"),
        (["*"], "172.18.0.4", "192.0.2.1", "192.0.2.1"),
    ],
)
def test_client_address(
    settings: Any, trusted: list[str], peer: str, forwarded: str, client: str
) -> None:
    settings.TRUSTED_PROXIES = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == client


def test_logged_escapes_quotes_and_control_characters() -> None:
    assert logged('a"b\\c\nd\x00é') == '"a\\"b\\\\c\\nd\\u0000\\u00e9"'
