"""movies.tokens: issuing, authenticating and revoking API tokens."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from movies.models import ApiToken
from movies.tokens import LAST_USED_RESOLUTION, authenticate_token, issue_token, revoke_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def user() -> User:
    return User.objects.create_user("tokenowner", password=None)


def test_issue_stores_only_prefix_and_digest(user: User) -> None:
    token, raw = issue_token(user, "importer")
    assert re.fullmatch(r"[0-9a-f]{8}\.[A-Za-z0-9_-]{43}", raw)
    stored = ApiToken.objects.get(pk=token.pk)
    assert (stored.user_id, stored.name, stored.prefix) == (user.pk, "importer", raw[:8])
    assert stored.digest == hashlib.sha256(raw.encode()).hexdigest()
    secret = raw.split(".", 1)[1]
    assert all(secret not in str(value) for value in vars(stored).values())
    assert (stored.last_used_at, stored.revoked_at) == (None, None)


def test_each_issue_is_a_new_token(user: User) -> None:
    (first, raw_1), (second, raw_2) = issue_token(user, "a"), issue_token(user, "b")
    assert first.prefix != second.prefix
    assert raw_1 != raw_2
    assert authenticate_token(raw_1) == first
    assert authenticate_token(raw_2) == second


def test_authenticate_returns_the_token_and_notes_use_once_a_minute(user: User) -> None:
    token, raw = issue_token(user, "api")
    found = authenticate_token(raw)
    assert found is not None
    assert (found.pk, found.user) == (token.pk, user)
    first_use = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first_use is not None
    assert found.last_used_at == first_use

    again = authenticate_token(raw)
    assert again is not None
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first_use

    long_ago = timezone.now() - LAST_USED_RESOLUTION - timedelta(seconds=1)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=long_ago)
    assert authenticate_token(raw) is not None
    latest = ApiToken.objects.get(pk=token.pk).last_used_at
    assert latest is not None
    assert latest > long_ago


def tampered(raw: str) -> str:
    last = raw[-1]
    return raw[:-1] + ("A" if last != "A" else "B")


@pytest.mark.parametrize(
    "make_bad",
    [
        tampered,
        lambda raw: "0" * 8 + raw[8:] if raw[:8] != "0" * 8 else "1" * 8 + raw[8:],
        lambda raw: raw + "x",
        lambda raw: raw.replace(".", ""),
        lambda raw: raw.upper(),
        lambda raw: f"Bearer {raw}",
        lambda raw: "",
        lambda raw: ".",
        lambda raw: raw[:8] + ".é" + raw[11:],
        lambda raw: "x" * 10_000,
    ],
    ids=[
        "wrong-secret",
        "unknown-prefix",
        "too-long",
        "no-dot",
        "upper-case",
        "with-scheme",
        "empty",
        "dot",
        "non-ascii",
        "huge",
    ],
)
def test_anything_but_the_exact_token_is_refused(
    user: User, make_bad: Callable[[str], str]
) -> None:
    token, raw = issue_token(user, "api")
    assert authenticate_token(make_bad(raw)) is None
    assert ApiToken.objects.get(pk=token.pk).last_used_at is None


def test_a_miss_and_a_wrong_secret_take_the_same_path(
    user: User, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    """Both look the prefix up and compare a digest; neither writes."""
    _, raw = issue_token(user, "api")
    unknown = ("0" * 8 if raw[:8] != "0" * 8 else "1" * 8) + raw[8:]
    for bad in (tampered(raw), unknown):
        with django_assert_num_queries(1):
            assert authenticate_token(bad) is None


def test_revoked_tokens_and_inactive_users_are_refused(user: User) -> None:
    token, raw = issue_token(user, "api")
    _, other_raw = issue_token(user, "other")
    revoke_token(token)
    first_revocation = token.revoked_at
    assert first_revocation is not None
    assert not token.is_active
    assert authenticate_token(raw) is None
    revoke_token(token)
    assert token.revoked_at == first_revocation
    assert authenticate_token(other_raw) is not None

    user.is_active = False
    user.save(update_fields=["is_active"])
    assert authenticate_token(other_raw) is None
