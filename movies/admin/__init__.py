"""The curator admin. Django's autodiscovery imports this package, which registers
the catalogue (``catalogue``) and API tokens (``api_tokens``), and registers the
accounts' admins again with their changelists limited to the filters they offer
(``lookups``)."""

from django.contrib import admin

from movies.admin import api_tokens, catalogue, lookups

lookups.check_auth_admins(admin.site)

__all__ = ["api_tokens", "catalogue", "lookups"]
