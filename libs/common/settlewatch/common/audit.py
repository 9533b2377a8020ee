"""The audit log (SPEC §14): every change made through the API, who made it (the token's id and
scope), what (method and route, the path, the status) and when, in the append-only table
``audit_log`` (a trigger refuses updates and deletes).

A change is recorded in the transaction that makes it (common.db.transaction writes the row
before it commits): a change is never committed without its row, and a row never names a change
that was rolled back. A request that commits nothing (a duplicate file, a refusal) changed
nothing and is not recorded. Events (`POST /v1/transactions`, `/v1/settlements`) are data, not
changes of configuration, and each payment keeps its own history: they are not recorded here.
A route that refuses after locking rows raises inside its transaction, so that it commits
nothing.
Inside the transaction, a route may add details and name the status it will answer when that
is not its route's own (:func:`describe`).
"""

from __future__ import annotations

from collections.abc import Collection
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["AuditChanges", "Pending", "describe", "write_pending"]

_CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A transaction gets an id when it first writes (a row lock counts): none, nothing changed.
_CHANGED = text("SELECT pg_current_xact_id_if_assigned() IS NOT NULL")
_INSERT = text(
    "INSERT INTO audit_log (actor, scope, service, action, target, status, details) "
    "VALUES (:actor, :scope, :service, :action, :target, :status, CAST(:details AS jsonb))"
)


@dataclass
class Pending:
    """The audit row of the request being served, until a transaction writes it."""

    scope: Scope
    service: str
    unaudited: frozenset[str]
    status: int | None = None  # when not the route's own
    details: dict[str, Any] = field(default_factory=dict)
    written: bool = False


_PENDING: ContextVar[Pending | None] = ContextVar("audit_pending", default=None)


def describe(*, status: int | None = None, **details: Any) -> None:
    """What the current request's audit row says beyond who and what: the status it will answer
    when its route's own does not say (201 for a created profile, 422 for a file recorded as
    rejected), and details (an issued token's id, the fields a profile change touched — never a
    value). Called inside the change's transaction; outside a request it does nothing."""
    pending = _PENDING.get()
    if pending is not None:
        pending.status = status or pending.status
        pending.details |= details


async def write_pending(conn: AsyncConnection) -> Pending | None:
    """In a transaction about to commit: the current request's audit row, once. The row is
    written when committed (the caller marks it)."""
    pending = _PENDING.get()
    if pending is None or pending.written:
        return None
    state = pending.scope.get("state", {})
    principal = state.get("principal")
    route = pending.scope.get("route")
    template = getattr(route, "path", None)
    if principal is None or template is None or template in pending.unaudited:
        return None
    if not await conn.scalar(_CHANGED):
        return None  # the transaction wrote nothing: a refusal, or a change already made
    await conn.execute(
        _INSERT,
        {
            "actor": principal.token_id,
            "scope": principal.scope,
            "service": pending.service,
            "action": f"{pending.scope['method']} {template}",
            "target": pending.scope["path"],
            "status": pending.status or getattr(route, "status_code", None) or 200,
            "details": orjson.dumps(pending.details).decode() if pending.details else None,
        },
    )
    return pending


class AuditChanges:
    """ASGI middleware: makes each authenticated change request's audit row pending, for the
    transaction that makes the change to write."""

    def __init__(self, app: ASGIApp, service: str, unaudited: Collection[str] = ()) -> None:
        self.app = app
        self._service = service
        self._unaudited = frozenset(unaudited)  # route templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _CHANGES:
            await self.app(scope, receive, send)
            return
        token = _PENDING.set(Pending(scope, self._service, self._unaudited))
        try:
            await self.app(scope, receive, send)
        finally:
            _PENDING.reset(token)
