"""Bearer-token authentication and permission checks of API writes.

The header is parsed on the loop (:func:`permit`); the token lookup (prefix,
constant-time digest comparison, revocation: :mod:`movies.tokens`) and the
permission check run in the write's own bridged call and transaction
(:func:`run_as`; a hop of their own only before ``100 Continue``), with the
failed-attempt limits (kept in the database, shared by every
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
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

from aiohttp import web
from django.db import transaction

from aioapi.forwarded import client_of
from aioapi.keys import AUTH_LIMITER, BRIDGE, SETTINGS
from aioapi.ratelimit import FailedAuthLimiter
from aioapi.responses import expects_continue
from movies.problems import Problem, retry_later
from movies.tokens import authenticate_token

logger = logging.getLogger(__name__)

REALM = 'Bearer realm="mymoviedb"'
R = TypeVar("R")


@dataclass(frozen=True)
class Caller:
    """Who is writing: the token's owner, to whom the change is attributed."""

    user_id: int


@dataclass(frozen=True)
class _Verdict:
    caller: Caller | None  # None: no valid token
    allowed: bool
    refused: int | None = None  # limited: a 429 with this Retry-After


@dataclass(frozen=True)
class Permit:
    """What a write knows of its caller before it reads the body (:func:`permit`).

    Either the ``caller``, already verified (the client asked to wait with
    ``Expect: 100-continue``), or what the write's own hop verifies: the client's
    address and the raw token (``None``: malformed, a failure all the same).
    """

    permission: str
    client: str
    raw: str | None
    caller: Caller | None = None


async def permit(request: web.Request, permission: str) -> Permit:
    """The first step of a write, before its body: a 401 without ``Authorization``
    (no query needed). The token itself is verified in the write's hop
    (:func:`run_as`), in its transaction; only a client that sent
    ``Expect: 100-continue`` has it verified now, in a hop of its own, so that
    ``100 Continue`` goes only to a caller allowed to send the body."""
    header = request.headers.get("Authorization")
    if header is None:
        raise _unauthorized("Authentication required: send Authorization: Bearer <token>.")
    granted = Permit(permission, client_address(request), parse_bearer(header))
    if expects_continue(request):
        return replace(granted, caller=await _verified(request, granted))
    return granted


@asynccontextmanager
async def token_before_refusals(request: web.Request, granted: Permit) -> AsyncIterator[None]:
    """Around a write's own checks (its id, its body): a refusal they raise (400, 404,
    413, 415, 408) is answered only once the token has passed, so a caller without a
    valid one meets its 401 (or 429, counted by the limits) first, as it would if
    authentication came before the body, and learns nothing of the API's rules.
    The token is verified in a hop of its own, on that refusal's path only; a write
    whose checks pass still verifies it in the write's own hop (:func:`run_as`)."""
    try:
        yield
    except (Problem, web.HTTPException):
        if granted.caller is None:
            await _verified(request, granted)
        raise


async def run_as(
    request: web.Request, granted: Permit, write: Callable[..., R], /, **kwargs: Any
) -> R:
    """``write(user_id=<the caller's>, **kwargs)`` on an ORM thread: one hop, which
    first verifies the token (the failed-attempt limits included) in the write's
    transaction, unless :func:`permit` already did."""
    bridge = request.app[BRIDGE]
    if granted.caller is not None:
        return await bridge.run(write, user_id=granted.caller.user_id, **kwargs)
    verdict, written = await bridge.run(
        _authenticated, request.app[AUTH_LIMITER], granted, write, kwargs
    )
    _caller(verdict, granted)
    return cast(R, written)


async def _verified(request: web.Request, granted: Permit) -> Caller:
    verdict = await request.app[BRIDGE].run(
        _authenticate,
        request.app[AUTH_LIMITER],
        client=granted.client,
        raw=granted.raw,
        permission=granted.permission,
    )
    return _caller(verdict, granted)


def _authenticated(
    limiter: FailedAuthLimiter,
    granted: Permit,
    write: Callable[..., R],
    kwargs: dict[str, Any],
) -> tuple[_Verdict, R | None]:
    # Runs on an ORM thread, in one transaction: a refused token's failure is
    # counted (returned, not raised, so it commits); an accepted one writes.
    with transaction.atomic():
        verdict = _authenticate(
            limiter, client=granted.client, raw=granted.raw, permission=granted.permission
        )
        if verdict.caller is None or not verdict.allowed or verdict.refused is not None:
            return verdict, None
        return verdict, write(user_id=verdict.caller.user_id, **kwargs)


def _caller(verdict: _Verdict, granted: Permit) -> Caller:
    # The verdict as the caller, or the problem that refuses it.
    if verdict.refused is not None:
        raise _too_many(verdict.refused)
    if verdict.caller is None:
        logger.warning("failed API authentication from %s", granted.client)
        raise _unauthorized("The token is invalid or revoked.", error="invalid_token")
    if not verdict.allowed:
        raise Problem(403, f"The token's user lacks the permission {granted.permission}.")
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
