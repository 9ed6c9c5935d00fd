"""Bearer-token authentication and permission checks of API writes.

The header is parsed on the loop; the token lookup (prefix, constant-time digest
comparison, revocation: :mod:`movies.tokens`) and the permission check run in one
bridged call, with the failed-attempt limits (kept in the database, shared by every
worker: aioapi.ratelimit). Failed attempts are counted per client address and per
token id (the token's prefix) the address tries; past ``API_AUTH_FAILURES_PER_MINUTE`` the address's
failures are 429s, and its further tries at a token id it has used up are refused
unchecked. A valid token is checked and accepted whatever other tokens did.

What a guesser learns, and how fast: a token's validity shows only when it is
checked. The id picks the one stored digest the secret is compared with (in
constant time), so guessing one token means trying its id, and one address tries
each id at most ``API_AUTH_FAILURES_PER_MINUTE`` times a minute: the old limit.
Changing the id with each try gains nothing: each try is then a guess at another,
unknown token, and an unknown id costs the same digest comparison as a known one
(movies.tokens), so the guesser does not even learn which ids exist; such a spray
costs one indexed query per request, like any anonymous read. An unchecked refusal
is faster than a checked one, but it depends only on the client's own count of
failures at that id, never on whether a token is valid. The price: a curator whose
own token id keeps failing from their own address (their script holds a revoked
secret, or someone who knows the id guesses at it) waits out the window; the
failures of other tokens never lock them out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from aiohttp import web

from aioapi.forwarded import client_of
from aioapi.keys import AUTH_LIMITER, BRIDGE, SETTINGS
from aioapi.ratelimit import FailedAuthLimiter
from movies.problems import Problem, retry_later
from movies.tokens import authenticate_token

logger = logging.getLogger(__name__)

REALM = 'Bearer realm="mymoviedb"'


@dataclass(frozen=True)
class Caller:
    """Who is writing: the token's owner, to whom the change is attributed."""

    user_id: int


@dataclass(frozen=True)
class _Verdict:
    caller: Caller | None  # None: no valid token
    allowed: bool
    refused: int | None = None  # limited: a 429 with this Retry-After


async def require_permission(request: web.Request, permission: str) -> Caller:
    """The caller of a write, or a 401/403/429 problem.

    ``permission`` is a Django permission such as ``movies.change_movie``.
    """
    header = request.headers.get("Authorization")
    if header is None:
        raise _unauthorized("Authentication required: send Authorization: Bearer <token>.")
    client = client_address(request)
    raw = parse_bearer(header)
    verdict = await request.app[BRIDGE].run(
        _authenticate, request.app[AUTH_LIMITER], client=client, raw=raw, permission=permission
    )
    if verdict.refused is not None:
        raise _too_many(verdict.refused)
    if verdict.caller is None:
        logger.warning("failed API authentication from %s", client)
        raise _unauthorized("The token is invalid or revoked.", error="invalid_token")
    if not verdict.allowed:
        raise Problem(403, f"The token's user lacks the permission {permission}.")
    return verdict.caller


def _authenticate(
    limiter: FailedAuthLimiter, *, client: str, raw: str | None, permission: str
) -> _Verdict:
    # Runs on an ORM thread: the limits, the token lookup, the user and its
    # permissions are queries.
    token_id = raw.partition(".")[0] if raw else None
    limited = limiter.retry_after(client)
    if limited is not None:
        # Refused unchecked: no token at all, or this address's tries at it are used up.
        used_up = limiter.token_retry_after(client, token_id) if token_id else limited
        if used_up is not None:
            return _Verdict(caller=None, allowed=False, refused=used_up)
    verdict = _check(raw, permission) if raw else _Verdict(caller=None, allowed=False)
    if verdict.caller is None:
        limiter.failed(client, token_id)
        if limited is not None:
            # Past the limit only failures are refused, and no longer logged one by one.
            return replace(verdict, refused=limiter.retry_after(client) or limited)
    return verdict


def parse_bearer(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else ``None``."""
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or len(token) > 256:
        return None
    return token


def client_address(request: web.Request) -> str:
    """The address failed attempts are counted against (aioapi.forwarded)."""
    forwarded = request.headers.getall("X-Forwarded-For", [])
    return client_of(request.remote, forwarded, request.app[SETTINGS].trusted_proxies)


def _check(raw: str, permission: str) -> _Verdict:
    # Runs on an ORM thread: token lookup, user and permissions are queries.
    token = authenticate_token(raw)
    if token is None or not token.user.is_active:
        return _Verdict(caller=None, allowed=False)
    user = token.user
    caller = Caller(user_id=user.pk)
    return _Verdict(caller=caller, allowed=user.has_perm(permission))


def _too_many(retry_after: int) -> Problem:
    return retry_later(
        429, "Too many failed authentications; try again later.", seconds=retry_after
    )


def _unauthorized(detail: str, *, error: str | None = None) -> Problem:
    problem = Problem(401, detail)
    challenge = REALM if error is None else f'{REALM}, error="{error}"'
    problem.headers["WWW-Authenticate"] = challenge
    return problem
