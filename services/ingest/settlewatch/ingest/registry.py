"""Which merchants are registered: a cache in front of the merchants table.

Merchants are never deleted, so a merchant once seen stays known; unknown ids are looked up in
one query per request (a merchant registered through another ingest instance is found then).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from settlewatch.schema.reference import merchants

__all__ = ["MerchantRegistry"]


class MerchantRegistry:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._known: set[str] = set()

    def add(self, merchant_id: str) -> None:
        self._known.add(merchant_id)

    async def unknown(self, merchant_ids: Iterable[str]) -> set[str]:
        """The ids among `merchant_ids` that are not registered."""
        missing = set(merchant_ids) - self._known
        if missing:
            async with self._engine.connect() as conn:
                found = await conn.scalars(
                    select(merchants.c.merchant_id).where(merchants.c.merchant_id.in_(missing))
                )
                self._known.update(found)
            missing -= self._known
        return missing
