"""``manage.py create_demo_curator``: a staff user in "Curators", with a password and token."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from movies.models import ApiToken, Credit, Genre, Movie, Person
from movies.tokens import issue_token

GROUP = "Curators"
TOKEN_NAME = "demo curator"
CURATED_MODELS = (Movie, Genre, Person, Credit, ApiToken)
ACTIONS = ("add", "change", "delete", "view")


def curators_group() -> Group:
    """The "Curators" group with full rights on the catalogue models and API tokens."""
    group, _ = Group.objects.get_or_create(name=GROUP)
    content_types = ContentType.objects.get_for_models(*CURATED_MODELS).values()
    codenames = [
        f"{action}_{model._meta.model_name}" for model in CURATED_MODELS for action in ACTIONS
    ]
    permissions = Permission.objects.filter(content_type__in=content_types, codename__in=codenames)
    if len(permissions) != len(codenames):
        raise CommandError("catalogue permissions are missing: run `manage.py migrate` first")
    group.permissions.add(*permissions)
    return group


class Command(BaseCommand):
    help = (
        "Create or reset a demo curator: a staff user (not a superuser) in the Curators "
        "group, with a new random password and a new API token, both printed once. "
        "Earlier demo tokens of that user are revoked."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="curator", help="default: curator")
        parser.add_argument(
            "--admin-url",
            default="http://127.0.0.1:8000/admin/",
            help="where the admin is served, for the printed instructions",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"]
        password = secrets.token_urlsafe(16)
        with transaction.atomic():
            user, created = get_user_model().objects.get_or_create(username=username)
            if user.is_superuser:
                raise CommandError(
                    f"{username!r} is a superuser; choose another --username for the demo curator"
                )
            user.is_staff = True
            user.is_active = True
            user.set_password(password)
            user.save()
            user.groups.add(curators_group())
            ApiToken.objects.filter(user=user, name=TOKEN_NAME, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
            _, raw_token = issue_token(user, TOKEN_NAME)
        action = "Created" if created else "Reset"
        self.stdout.write(self.style.SUCCESS(f"{action} curator {username!r} in group {GROUP}."))
        self.stdout.write(f"Admin: {options['admin_url']}  user: {username}  password: {password}")
        self.stdout.write(f"API token: {raw_token}")
        self.stdout.write("Both are shown only now; run this command again to reset them.")
