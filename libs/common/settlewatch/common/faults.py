"""Whose fault is an exception: the infrastructure's, or the record being processed?

A consumer loop isolates what one record causes (it dead-letters that record and goes on) and
stops only for what concerns every record alike: the database or the broker being unreachable,
overloaded, shutting down, or rolling a transaction back to be retried. Stopping is then right:
the loop is restarted with backoff and resumes from the offsets saved with its state.
"""

from __future__ import annotations

import traceback

import asyncpg
from aiokafka.errors import KafkaError
from sqlalchemy import exc as sa

from settlewatch.common.publisher import BrokerUnavailable

__all__ = ["is_infrastructure", "where"]

# SQLSTATE classes of a fault in the server or the connection, not in the statement's data:
# connection exception, transaction rollback (serialization, deadlock), insufficient
# resources, operator intervention (shutdown, cancel), system error.
_TRANSIENT_SQLSTATE = frozenset({"08", "40", "53", "57", "58"})
_INFRASTRUCTURE = (
    OSError,
    TimeoutError,
    KafkaError,
    BrokerUnavailable,
    asyncpg.InterfaceError,
    sa.OperationalError,
    sa.InterfaceError,
    sa.TimeoutError,
    sa.DisconnectionError,
)


def is_infrastructure(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) is a fault of the database or broker connection."""
    seen: BaseException | None = exc
    while seen is not None:
        sqlstate = getattr(seen, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate:
            return sqlstate[:2] in _TRANSIENT_SQLSTATE
        if isinstance(seen, sa.DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, _INFRASTRUCTURE):
            return True
        seen = seen.__cause__
    return False


def where(exc: BaseException) -> str:
    """The innermost frame of `exc`'s stack, ``file.py:123 in function``, for a dead letter."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown"
    frame = frames[-1]
    _, package, inside = frame.filename.rpartition("/settlewatch/")
    path = f"settlewatch/{inside}" if package else frame.filename.rsplit("/", 1)[-1]
    return f"{path}:{frame.lineno} in {frame.name}"
