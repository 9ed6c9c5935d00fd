"""Changelist URLs a curator can type: only what the admin offers reaches the database.

Django's admin lets a changelist URL filter on any lookup of a model's own
fields (``?title__regex=(``), and passes any value on. PostgreSQL refuses what
it cannot take (an invalid regular expression, a NUL character), and the refusal
came back as a 500. Two rules close the class:

* ``OfferedLookupsOnly``: a changelist filters only through the parameters of
  its own ``list_filter`` (and ``date_hierarchy``); any other is Django's
  ``DisallowedModelAdminLookup``, a 400.
* ``AdminNulMiddleware``: a NUL character in any query parameter of an admin URL
  (a filter, the search ``q``, the autocomplete ``term``) is a 400 before any
  view runs; no text column can store or compare it.
"""

from __future__ import annotations

import functools
from typing import Any, cast

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import NoReverseMatch, get_urlconf, reverse
from django.utils.deprecation import MiddlewareMixin

NUL_REFUSED = "A query parameter of this URL holds a NUL character, which no field can hold."


class OfferedLookupsOnly(admin.ModelAdmin):  # type: ignore[type-arg]
    """A ModelAdmin whose changelist filters only through its own list filters."""

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        if lookup not in self.offered_lookups(request):
            return False
        return super().lookup_allowed(lookup, value, request)

    def offered_lookups(self, request: HttpRequest) -> set[str]:
        """The query parameters of the changelist's filters."""
        offered: set[str] = set()
        for item in self.get_list_filter(request):
            if isinstance(item, type) and issubclass(item, admin.SimpleListFilter):
                offered.add(str(item.parameter_name))
                continue
            # A field's path, alone or with its filter class.
            path, make = cast(
                tuple[str, Any], item if isinstance(item, list | tuple) else (item, None)
            )
            field = get_fields_from_path(self.model, path)[-1]
            create = make or admin.FieldListFilter.create
            spec = create(field, request, {}, self.model, self, field_path=path)
            offered.update(str(parameter) for parameter in spec.expected_parameters())
        if self.date_hierarchy:
            offered.update(f"{self.date_hierarchy}__{part}" for part in ("year", "month", "day"))
        return offered


def check_every_admin(site: admin.AdminSite) -> None:
    """Register every ModelAdmin of ``site`` that is not ``OfferedLookupsOnly`` (the
    accounts', django-axes') again with it. Django imports the admin modules in
    INSTALLED_APPS order, and ``movies`` comes last."""
    for model, model_admin in list(site._registry.items()):
        if isinstance(model_admin, OfferedLookupsOnly):
            continue
        plain = type(model_admin)
        checked = type(plain.__name__, (OfferedLookupsOnly, plain), {"__doc__": plain.__doc__})
        site.unregister(model)
        site.register(model, checked)


class AdminNulMiddleware(MiddlewareMixin):
    """A 400 for an admin URL with a NUL character in a query parameter's name or value.

    Sync and async (the mixin), like mymoviedb.middleware's.
    """

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        prefix = _admin_prefix(get_urlconf() or settings.ROOT_URLCONF)
        admin_url = prefix is not None and request.path.startswith(prefix)
        if admin_url and _holds_nul(request.GET.lists()):
            return HttpResponseBadRequest(NUL_REFUSED, content_type="text/plain; charset=utf-8")
        return None


@functools.cache
def _admin_prefix(urlconf: str) -> str | None:
    # Once per URLconf (a test may set its own, without the admin): every request
    # of every view passes here.
    try:
        return reverse("admin:index", urlconf=urlconf)
    except NoReverseMatch:
        return None


def _holds_nul(items: Any) -> bool:
    return any("\x00" in name or any("\x00" in v for v in values) for name, values in items)
