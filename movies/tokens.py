"""API tokens: issuing, checking and revoking bearer tokens for API writes.

A raw token is ``"<prefix>.<secret>"``: the prefix (8 hex characters, stored
and unique) finds the row, and the SHA-256 digest of the whole raw token is
compared in constant time. Only the digest is stored, so a leaked table does
not leak usable tokens; the raw token is shown once, when it is issued.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from movies.models import ApiToken

# last_used_at is informational; writing it on every request would turn each
# authenticated read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
_RAW_TOKEN = re.compile(r"(?P<prefix>[0-9a-f]{8})\.(?P<secret>[A-Za-z0-9_-]{43})")
# Compared against when the prefix is unknown, so that a miss costs the same
# digest-and-compare as a hit and timing does not reveal which prefixes exist.
_DUMMY_DIGEST = hashlib.sha256(b"no such token").hexdigest()
_ISSUE_ATTEMPTS = 5


def digest(raw: str) -> str:
    """The stored form of a raw token."""
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_token(user: Any, name: str) -> tuple[ApiToken, str]:
    """Create a token for ``user``; return it and the raw token, shown only now."""
    for _ in range(_ISSUE_ATTEMPTS):
        raw = f"{secrets.token_hex(4)}.{secrets.token_urlsafe(32)}"
        try:
            with transaction.atomic():
                token = ApiToken.objects.create(
                    user=user, name=name, prefix=raw.split(".", 1)[0], digest=digest(raw)
                )
        except IntegrityError:
            # A 32-bit prefix collides about once in 4 billion issues: draw again.
            continue
        return token, raw
    raise RuntimeError(f"could not find a free token prefix in {_ISSUE_ATTEMPTS} attempts")


def authenticate_token(raw: str) -> ApiToken | None:
    """Return the active token that ``raw`` is, or ``None``; notes when it was used."""
    match = _RAW_TOKEN.fullmatch(raw)
    if match is None:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(prefix=match["prefix"], revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    expected = token.digest if token is not None else _DUMMY_DIGEST
    if not hmac.compare_digest(expected, digest(raw)) or token is None:
        return None
    now = timezone.now()
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    if ApiToken.objects.filter(stale, pk=token.pk).update(last_used_at=now):
        token.last_used_at = now
    return token


def revoke_token(token: ApiToken) -> None:
    """Revoke ``token`` from now on; revoking twice keeps the first time."""
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db(fields=["revoked_at"])
