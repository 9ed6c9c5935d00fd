"""The curator admin. Django's autodiscovery imports this package, which registers
the catalogue (``catalogue``) and API tokens (``api_tokens``)."""

from movies.admin import api_tokens, catalogue

__all__ = ["api_tokens", "catalogue"]
