"""Admin of API tokens: curators issue and revoke the bearer tokens of API writes.

A token is issued by ``movies.tokens.issue_token``; the raw token is shown once,
in a message after saving, and only its digest is stored. The digest is never
displayed. A revoked token stays revoked: revoking is an action, not a field.

A token acts with its user's permissions in the API, so only a superuser may
issue tokens for, or see the tokens of, other users: anyone else would gain
those users' rights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import ForeignKey, QuerySet
from django.forms import ModelChoiceField, ModelForm
from django.http import HttpRequest
from django.utils import timezone

from movies.admin.lookups import OfferedLookupsOnly
from movies.models import ApiToken
from movies.tokens import issue_token

if TYPE_CHECKING:
    # django-stubs' name for what get_fieldsets returns (not in Django itself).
    from django.contrib.admin.options import _FieldsetSpec

ADD_FIELDS = ("user", "name")
ADD_DESCRIPTION = (
    "A token lets a program write to the catalogue through the API with the rights of "
    "the user it is issued to. It is shown once, after saving; only a digest is kept."
)
CHANGE_FIELDS = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")


@admin.register(ApiToken)
class ApiTokenAdmin(OfferedLookupsOnly):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at", "active"]
    list_select_related = ["user"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "user__username"]
    actions = ["revoke"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiToken]:
        tokens = super().get_queryset(request)
        return tokens if request.user.is_superuser else tokens.filter(user=request.user.pk)

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        if db_field.name == "user" and not request.user.is_superuser:
            kwargs["queryset"] = get_user_model().objects.filter(pk__in=[request.user.pk])
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> tuple[str, ...]:
        return ADD_FIELDS if obj is None else CHANGE_FIELDS

    def get_fieldsets(self, request: HttpRequest, obj: ApiToken | None = None) -> _FieldsetSpec:
        if obj is not None:
            return super().get_fieldsets(request, obj)
        return [(None, {"fields": ADD_FIELDS, "description": ADD_DESCRIPTION})]

    def get_readonly_fields(
        self, request: HttpRequest, obj: ApiToken | None = None
    ) -> tuple[str, ...]:
        # Only the name changes after issue: a token never moves to another
        # user, and a revoked token is never un-revoked.
        return () if obj is None else tuple(f for f in CHANGE_FIELDS if f != "name")

    @admin.display(description="active", boolean=True)
    def active(self, token: ApiToken) -> bool:
        return token.is_active

    def save_model(
        self, request: HttpRequest, obj: ApiToken, form: ModelForm[ApiToken], change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        token, raw = issue_token(obj.user, obj.name)
        # The admin goes on with ``obj`` (history entry, "was added" message):
        # make it the row that issue_token saved.
        obj.pk = token.pk
        obj.refresh_from_db()
        messages.success(request, f"Copy this token now, it will not be shown again: {raw}")
        messages.info(request, token_usage())

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        # Most tokens are for the curator issuing them.
        return {"user": request.user.pk, **super().get_changeform_initial_data(request)}


def token_usage() -> str:
    """Where and how a token is used, shown beside the newly issued one."""
    api = f"{settings.API_PUBLIC_URL}/api"
    return (
        f"Send it in the header “Authorization: Bearer <token>” with POST, PATCH and "
        f"DELETE requests to {api}/movies (reads need no token); the API's documentation "
        f"is at {api}/docs. It acts with its user's permissions until revoked here."
    )
