"""Who a request came from, for the login throttle and the logs.

The peer (``REMOTE_ADDR``) is the client, unless it is one of the proxies in
``settings.TRUSTED_PROXIES``: then ``X-Forwarded-For`` is read from its right
end (the entry the nearest proxy appended), past every trusted proxy, and the
first address that is not one is the client. A client can write anything at the
left of the header; only what a trusted proxy appended is believed. With no
trusted proxies (the default) the header is never believed.

Logged values are escaped (``logged``): a header a client wrote cannot add a
quote, a line or a field to a log line.
"""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(trusted: tuple[str, ...]) -> tuple[Network, ...] | None:
    """The trusted proxies as networks; None for "*" (every peer is a proxy)."""
    if "*" in trusted:
        return None
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted)


def is_trusted_proxy(address: str) -> bool:
    """Whether ``address`` is one of ``settings.TRUSTED_PROXIES``."""
    if not settings.TRUSTED_PROXIES:
        return False
    networks = _networks(tuple(settings.TRUSTED_PROXIES))
    if networks is None:
        return True
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in networks)


def forwarded_chain(request: HttpRequest) -> list[str]:
    """The ``X-Forwarded-For`` entries as sent, left to right (empty without the header)."""
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    return [hop.strip() for hop in header.split(",") if hop.strip()]


def client_address(request: HttpRequest) -> str:
    """The client's address: the peer, or the address a trusted proxy says it served."""
    peer = str(request.META.get("REMOTE_ADDR", ""))
    if not is_trusted_proxy(peer):
        return peer
    # With "*" only the peer is known to be a proxy: the entry it appended is the client.
    anywhere = "*" in settings.TRUSTED_PROXIES
    for hop in reversed(forwarded_chain(request)):
        try:
            address = str(ipaddress.ip_address(hop.strip("[]")))
        except ValueError:
            return peer  # no proxy appends that: the header is not believable
        if anywhere or not is_trusted_proxy(address):
            return address
    return peer


def logged(value: object) -> str:
    """``value`` as one JSON string: quotes, backslashes and control characters escaped."""
    return json.dumps(str(value), ensure_ascii=True)


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
