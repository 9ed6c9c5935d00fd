"""manage.py create_demo_curator: the printed credentials work, a rerun resets them."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib import admin
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.test import Client, RequestFactory

from movies.models import ApiToken
from movies.tokens import authenticate_token

pytestmark = pytest.mark.django_db

CREDENTIALS = re.compile(
    r"Admin: http://127\.0\.0\.1:8000/admin/  user: (?P<user>\S+)  password: (?P<password>\S+)\n"
    r"API token: (?P<token>\S+)\n"
)


def create(*args: str) -> re.Match[str]:
    out = io.StringIO()
    call_command("create_demo_curator", *args, stdout=out)
    match = CREDENTIALS.search(out.getvalue())
    assert match is not None, out.getvalue()
    return match


def test_printed_password_and_token_work() -> None:
    printed = create()
    assert printed["user"] == "curator"
    user = authenticate(username="curator", password=printed["password"])
    assert isinstance(user, User)
    assert (user.is_staff, user.is_superuser, user.is_active) == (True, False, True)
    token = authenticate_token(printed["token"])
    assert token is not None
    assert token.user == user

    assert Client().login(username="curator", password=printed["password"])
    request = RequestFactory().get("/admin/")
    request.user = user
    assert admin.site.has_permission(request)


def test_curators_group_can_manage_the_catalogue_and_tokens() -> None:
    create("--username", "editor")
    user = User.objects.get(username="editor")
    assert list(user.groups.values_list("name", flat=True)) == ["Curators"]
    expected = {
        f"movies.{action}_{model}"
        for model in ("movie", "genre", "person", "credit", "apitoken")
        for action in ("add", "change", "delete", "view")
    }
    assert user.get_group_permissions() == expected
    assert user.has_perms(expected)
    assert not user.has_perm("auth.change_user")


def test_running_again_resets_password_and_token() -> None:
    first = create()
    second = create()
    assert second["password"] != first["password"]
    assert authenticate(username="curator", password=first["password"]) is None
    assert authenticate(username="curator", password=second["password"]) is not None
    assert authenticate_token(first["token"]) is None
    assert authenticate_token(second["token"]) is not None
    user = User.objects.get(username="curator")
    assert ApiToken.objects.filter(user=user, revoked_at__isnull=True).count() == 1
    assert Group.objects.filter(name="Curators").count() == 1
    assert user.groups.count() == 1


def test_a_superuser_is_not_turned_into_a_demo_curator() -> None:
    admin = User.objects.create_superuser("boss", password="keep-this-password-42")
    with pytest.raises(CommandError, match="'boss' is a superuser"):
        create("--username", "boss")
    admin.refresh_from_db()
    assert admin.is_superuser
    assert admin.check_password("keep-this-password-42")
    assert not ApiToken.objects.filter(user=admin).exists()
    assert not admin.groups.exists()
