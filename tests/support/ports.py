from __future__ import annotations

import random
import socket
from pathlib import Path

_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _below_ephemeral() -> range:
    """Ports the kernel never hands out as the source of an outgoing connection: one picked from
    the ephemeral range can be taken by a client's connection (to the broker, the database)
    between the pick and the service's bind, and then the service cannot listen on it."""
    low = int(_EPHEMERAL.read_text().split()[0]) if _EPHEMERAL.exists() else 32768
    return range(10000, max(low, 10001))


def free_port() -> int:
    """A TCP port nobody listens on or connects from right now, outside the ephemeral range."""
    for port in random.sample(_below_ephemeral(), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def is_listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
