"""Where a webhook may be sent (SPEC §14): never to a private, loopback, link-local, metadata or
other non-public address, unless a network of SETTLEWATCH_WEBHOOK_ALLOW_PRIVATE allows it (for
development: `settlewatch up` allows loopback).

A URL's host is resolved as the system resolver reads it — so `2130706433`, `0177.0.0.1` and
`::ffff:127.0.0.1` are the loopback address they name; an IPv6 address carrying an IPv4 one
(6to4, Teredo, NAT64 `64:ff9b::/96`) is judged by the IPv4 address — and refused when any address
it names is not public. Registration checks it (a name that does not resolve yet is accepted:
delivery checks again); a delivery connects only to an address it has just checked, so a name
that starts to resolve to a private address after registration (DNS rebinding) fails the
attempt.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import urlsplit

from settlewatch.common.errors import BadInput

__all__ = [
    "LOOPBACK",
    "Blocked",
    "Network",
    "Resolver",
    "allowed_networks",
    "checked_addresses",
    "system_resolver",
]

Network = IPv4Network | IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]  # host, port → addresses
RESOLVE_TIMEOUT_S = 5.0
LOOPBACK = "127.0.0.0/8,::1"  # what `settlewatch up` allows


class Blocked(BadInput):
    """The URL names an address webhooks must not reach."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The system resolver's answer; an address in any spelling is read at once (no lookup, no
    thread hop), a name is looked up off the event loop."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def allowed_networks(text: str) -> tuple[Network, ...]:
    """`127.0.0.0/8,::1` → the networks allowed despite the guard (a clear error otherwise)."""
    networks = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            networks.append(ip_network(part, strict=False))
        except ValueError as exc:
            raise ValueError(f"{part!r} is not a network such as 127.0.0.0/8 or ::1") from exc
    return tuple(networks)


# NAT64 (RFC 6052): the well-known prefix carries an IPv4 address in its last 32 bits; the
# local-use prefix places it by a prefix length the network chooses, so it is never public here.
_NAT64 = ip_network("64:ff9b::/96")
_LOCAL_NAT64 = ip_network("64:ff9b:1::/48")


def _embedded(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: mapped, 6to4 (2002::/16), Teredo, NAT64 — a
    router hands the packet to that address, so that is the one judged."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _refused(address: IPv4Address | IPv6Address, allowed: Sequence[Network]) -> bool:
    if isinstance(address, IPv6Address):
        if address in _LOCAL_NAT64:
            return not any(address in network for network in allowed)
        address = _embedded(address) or address
    if any(address in network for network in allowed):
        return False
    return not address.is_global or address.is_multicast


async def checked_addresses(url: str, resolver: Resolver, allowed: Sequence[Network]) -> list[str]:
    """The addresses `url`'s host resolves to, every one public (or allowed); Blocked names the
    first that is not; an empty list when the name does not resolve (now)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = await asyncio.wait_for(resolver(host, port), RESOLVE_TIMEOUT_S)
    except (OSError, TimeoutError):
        return []
    for text in found:
        if _refused(ip_address(text.split("%", 1)[0]), allowed):  # fe80::1%eth0: no zone
            raise Blocked(f"{host} resolves to {text}, which is not a public address")
    return found
