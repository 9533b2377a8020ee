"""The audit log (SPEC §14): every change made through the API, who made it (the token's id and
scope), what (method and route, the path, the status) and when, in the append-only table
``audit_log`` (a trigger refuses updates and deletes).

A change is recorded when its answer is a success, before that answer is sent: a client that
saw its change accepted finds it in the log. Events (`POST /v1/transactions`, `/v1/settlements`)
are data, not changes of configuration, and each payment keeps its own history: they are not
recorded here. A route may add details through ``request.state.audit`` (a JSON object).
"""

from __future__ import annotations

import logging
from collections.abc import Collection

import orjson
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from settlewatch.common.metrics import AUDIT_FAILURES

__all__ = ["AuditChanges"]

_log = logging.getLogger(__name__)
_CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_INSERT = text(
    "INSERT INTO audit_log (actor, scope, service, action, target, status, details) "
    "VALUES (:actor, :scope, :service, :action, :target, :status, CAST(:details AS jsonb))"
)


class AuditChanges:
    """ASGI middleware: records the successful changes of authenticated requests."""

    def __init__(self, app: ASGIApp, service: str, unaudited: Collection[str] = ()) -> None:
        self.app = app
        self._service = service
        self._unaudited = frozenset(unaudited)  # route templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _CHANGES:
            await self.app(scope, receive, send)
            return

        async def audited_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                await self._record(scope, message["status"])
            await send(message)

        await self.app(scope, receive, audited_send)

    async def _record(self, scope: Scope, status: int) -> None:
        state = scope.get("state", {})
        principal = state.get("principal")
        route = getattr(scope.get("route"), "path", None)
        if principal is None or route is None or route in self._unaudited:
            return
        row = {
            "actor": principal.token_id,
            "scope": principal.scope,
            "service": self._service,
            "action": f"{scope['method']} {route}",
            "target": scope["path"],
            "status": status,
            "details": orjson.dumps(state["audit"]).decode() if "audit" in state else None,
        }
        try:
            async with scope["app"].state.resources.engine.begin() as conn:
                await conn.execute(_INSERT, row)
        except Exception:
            # The change is made: the answer still goes out; the gap is counted and logged.
            AUDIT_FAILURES.inc()
            _log.exception("audit log row not written", extra={"action": row["action"]})
