"""Who a request came from, for the login throttle and the logs.

The peer (``REMOTE_ADDR``) is the client, unless it is one of the proxies in
``settings.TRUSTED_PROXIES``: then ``X-Forwarded-For`` is read from its right
end (the entry the nearest proxy appended), past every trusted proxy, and the
first address that is not one is the client. A client can write anything at the
left of the header; only what a trusted proxy appended is believed. With no
trusted proxies (the default) the header is never believed.

Logged values are escaped (``escaped``, ``logged``): a header a client wrote cannot add a
quote, a line or a field to a log line.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(trusted: tuple[str, ...]) -> tuple[Network, ...] | None:
    """The trusted proxies as networks; None for "*" (every peer is a proxy)."""
    if "*" in trusted:
        return None
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted)


def is_trusted(address: str, trusted: Sequence[str]) -> bool:
    """Whether ``address`` is one of the proxies ``trusted`` lists."""
    if not trusted:
        return False
    networks = _networks(tuple(trusted))
    if networks is None:
        return True
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_from(peer: str, forwarded_for: str, trusted: Sequence[str]) -> str:
    """The client's address, from the peer's and the ``X-Forwarded-For`` it sent.

    Also used where Django's settings are not loaded (Gunicorn's access log).
    """
    if not is_trusted(peer, trusted):
        return peer
    # With "*" only the peer is known to be a proxy: the entry it appended is the client.
    anywhere = "*" in trusted
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            address = str(ipaddress.ip_address(hop.strip("[]")))
        except ValueError:
            return peer  # no proxy appends that: the header is not believable
        if anywhere or not is_trusted(address, trusted):
            return address
    return peer


def client_address(request: HttpRequest) -> str:
    """The client of a Django request, by ``settings.TRUSTED_PROXIES``."""
    peer = str(request.META.get("REMOTE_ADDR", ""))
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR", ""))
    return client_from(peer, forwarded, settings.TRUSTED_PROXIES)


def escaped(value: object) -> str:
    """``value`` with quotes, backslashes, control and non-ASCII characters escaped as
    in a JSON string, to stand between quotes in a log line."""
    return json.dumps(str(value), ensure_ascii=True)[1:-1]


def logged(value: object) -> str:
    """``value`` as one JSON string: quotes, backslashes and control characters escaped."""
    return f'"{escaped(value)}"'


def login_failure_str(
    username: str, ip_address: str, user_agent: str, path_info: str, request: HttpRequest
) -> str:
    """django-axes' description of a client in its log lines (AXES_CLIENT_STR_CALLABLE)."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    fields = {
        "username": username,
        "client": ip_address,
        "peer": request.META.get("REMOTE_ADDR", ""),
        "forwarded_for": forwarded,
        "user_agent": user_agent,
        "path": path_info,
    }
    return " ".join(f"{name}={logged(value)}" for name, value in fields.items())
