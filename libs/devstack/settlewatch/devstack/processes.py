"""Small OS helpers for the stack: parent-death signals and port checks."""

from __future__ import annotations

import ctypes
import signal
import socket
import sys

__all__ = ["die_with_parent", "port_is_free"]

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child between fork and exec: get SIGTERM when the parent dies, even by SIGKILL.

    So a ``settlewatch up`` that is killed outright leaves no orphaned service or broker behind.
    """
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True
