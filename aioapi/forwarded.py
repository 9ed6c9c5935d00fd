"""Who a request came from: the peer, or the client a trusted proxy names.

``X-Forwarded-For`` is believed only from a peer in ``API_TRUSTED_PROXIES``, and
then only its last hop, the one that proxy appended (nginx's
``$proxy_add_x_forwarded_for``); earlier hops are the client's own word. A proxy
behind another restores the client first (``set_real_ip_from``, deploy/README.md),
so one hop is all any configuration needs. The rate limiter and the access logs
use the same answer.
"""

from __future__ import annotations

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Networks = tuple[Network, ...]
UNKNOWN = "-"


def last_hop(forwarded_for: list[str]) -> str | None:
    """The last address of ``X-Forwarded-For`` (all its fields), or ``None``."""
    for value in reversed(forwarded_for):
        hops = [hop.strip() for hop in value.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return None


def is_trusted(peer: str | None, trusted: Networks) -> bool:
    """Whether ``peer`` is one of the ``trusted`` proxies."""
    if not trusted or peer is None:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:  # a Unix socket's peer, say
        return False
    return any(address in network for network in trusted)


def client_of(peer: str | None, forwarded_for: list[str], trusted: Networks) -> str:
    """The client of a request: a trusted proxy's last ``X-Forwarded-For`` hop, else the peer."""
    if is_trusted(peer, trusted):
        hop = last_hop(forwarded_for)
        if hop is not None:
            return hop
    return peer or UNKNOWN
