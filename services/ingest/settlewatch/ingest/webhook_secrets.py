"""Merchants' webhook secrets, encrypted at rest (SPEC §14; common.sealing).

The current secret of a merchant is the row without ``retires_at``. A profile with another
secret retires it ``overlap`` later, and until then the alerts service signs with both, so a
merchant can move its receiver to the new secret without losing a delivery. Rows retired for
good are deleted when the merchant's secret next changes. At start, ingest re-seals the rows
sealed under a key that is no longer the first of `SETTLEWATCH_SECRET_KEY`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from settlewatch.common.db import transaction
from settlewatch.common.sealing import Sealer

__all__ = ["WebhookSecrets"]

_log = logging.getLogger(__name__)
_CURRENT = text(
    "SELECT id, sealed FROM webhook_secrets WHERE merchant_id = :m AND retires_at IS NULL "
    "FOR UPDATE"
)
_RETIRE = text(
    "UPDATE webhook_secrets SET retires_at = now() + :overlap "
    "WHERE merchant_id = :m AND retires_at IS NULL"
)
_FORGET = text("DELETE FROM webhook_secrets WHERE merchant_id = :m AND retires_at <= now()")
_ADD = text("INSERT INTO webhook_secrets (merchant_id, key_id, sealed) VALUES (:m, :k, :s)")
_BATCH = 1000


class WebhookSecrets:
    def __init__(self, sealer: Sealer, overlap: timedelta) -> None:
        self._sealer = sealer
        self._overlap = overlap

    async def keep(self, conn: AsyncConnection, merchant_id: str, secret: str | None) -> bool:
        """Make `secret` the merchant's current one (None: no webhook, nothing signs any more),
        in the caller's transaction; whether that changed anything."""
        await conn.execute(_FORGET, {"m": merchant_id})
        current = (await conn.execute(_CURRENT, {"m": merchant_id})).all()
        if secret is not None and any(self._sealer.open(r.sealed) == secret for r in current):
            return False
        if secret is None and not current:
            return False
        overlap = self._overlap if secret is not None else timedelta(0)
        await conn.execute(_RETIRE, {"m": merchant_id, "overlap": overlap})
        if secret is not None:
            row = {"m": merchant_id, "k": self._sealer.key_id, "s": self._sealer.seal(secret)}
            await conn.execute(_ADD, row)
        return True

    async def reseal(self, engine: AsyncEngine) -> int:
        """Re-seal every row sealed under another key than the first; how many were."""
        resealed = 0
        while True:
            async with transaction(engine) as conn:
                rows = (
                    await conn.execute(
                        text(
                            "SELECT id, sealed FROM webhook_secrets WHERE key_id <> :k "
                            "LIMIT :n FOR UPDATE SKIP LOCKED"
                        ),
                        {"k": self._sealer.key_id, "n": _BATCH},
                    )
                ).all()
                if not rows:
                    break
                await conn.execute(
                    text("UPDATE webhook_secrets SET key_id = :k, sealed = :s WHERE id = :id"),
                    [
                        {"k": self._sealer.key_id, "s": self._sealer.reseal(r.sealed), "id": r.id}
                        for r in rows
                    ],
                )
            resealed += len(rows)
        if resealed:
            _log.info("webhook secrets re-sealed under the first key", extra={"count": resealed})
        return resealed
