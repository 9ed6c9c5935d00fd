"""Which poster URLs the catalogue stores: images on public hosts only.

Refused on write, not checked against an allow-list of hosts: a poster is any
image a curator or a source links, from Wikimedia or a studio's site, and a list
of hosts would need upkeep to let each new one in. What is refused is every
host that names no public machine, so no curator's browser (the admin shows
posters) and no client is made to fetch from inside a network: IP literals in
any notation a browser reads (``127.1``, ``0x7f000001``, ``0177.0.0.1``,
``[::ffff:127.0.0.1]``) that are private, loopback, link-local, unspecified,
multicast or reserved (anything ``ipaddress`` says is not global, including the
IPv4 address inside a mapped, 6to4 or Teredo IPv6 one), and names of the local
network (``localhost`` and ``*.localhost``, ``*.local``, ``*.internal``,
``*.lan``, ``*.home.arpa``, a name without a dot). Hosts must be ASCII (an
international name in its ``xn--`` form) with no percent-escapes, so no
Unicode digit or escaped dot spells an address past these checks, and a URL
carries no user name or password.

Names are not resolved here: a lookup at write time proves nothing about the
address a browser resolves later (DNS rebinding), and costs a round trip per
write; a public name pointing inside a network is the browser's Private Network
Access to refuse. Tracking pixels on public hosts are not told apart: that would
take a poster proxy.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".localdomain")
_HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]*|[0-9]+")


def poster_problem(url: str) -> str | None:
    """Why ``url`` may not be a poster, or ``None`` if it may ("" is no poster)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises for a port that is not a number in range)
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "must be an http(s) URL"
    if parts.username is not None or parts.password is not None:
        return "must not hold a user name or password"
    host = (parts.hostname or "").removesuffix(".")
    if not host:
        return "must name a host"
    if parts.netloc.rpartition("@")[2].startswith("["):
        return _address_problem(host)
    if not host.isascii() or "%" in host:
        return "must name its host in plain ASCII (an international name as xn--...)"
    if _ends_in_number(host):
        address = _ipv4(host)
        return "is not a valid host" if address is None else _address_problem(str(address))
    if not _HOST_NAME.fullmatch(host):
        return "is not a valid host"
    if host == "localhost" or host.endswith(LOCAL_SUFFIXES) or "." not in host:
        return "must be on a public host, not a local network name"
    return None


def _address_problem(literal: str) -> str | None:
    try:
        address = ipaddress.ip_address(literal)
    except ValueError:
        return "is not a valid host"
    embedded = (
        [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
        if isinstance(address, ipaddress.IPv6Address)
        else []
    )
    for candidate in (address, *(ip for ip in embedded if ip is not None)):
        if not candidate.is_global or candidate.is_multicast:
            return "must be on a public host, not a private, local or reserved address"
    return None


def _ends_in_number(host: str) -> bool:
    # WHATWG URL: a host whose last label is a number is an IPv4 address to a browser.
    return _NUMBER.fullmatch(host.rpartition(".")[2]) is not None


def _ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address a browser reads in ``host`` (WHATWG's IPv4 parser), else ``None``."""
    labels = host.split(".")
    if len(labels) > 4 or not all(_NUMBER.fullmatch(label) for label in labels):
        return None
    numbers = [_number(label) for label in labels]
    *leading, last = numbers
    if any(number > 255 for number in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last + sum(number << (8 * (3 - index)) for index, number in enumerate(leading))
    return ipaddress.IPv4Address(value)


def _number(label: str) -> int:
    if label[:2].lower() == "0x":
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        return int(label, 8) if set(label) <= set("01234567") else 256**4  # invalid octal
    return int(label)
