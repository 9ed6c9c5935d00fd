"""The curator admin. Django's autodiscovery imports this package, which registers
the catalogue (``catalogue``) and API tokens (``api_tokens``), and registers every
other app's admin again with its changelist limited to the filters it offers
(``lookups``)."""

from django.contrib import admin

from movies.admin import api_tokens, catalogue, lookups

lookups.check_every_admin(admin.site)

__all__ = ["api_tokens", "catalogue", "lookups"]
