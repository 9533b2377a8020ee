"""What files are read against: settlement accounts (whose money a statement entry is) and named
CSV column mappings. Both are upserts by id, answered 201 when new and 200 when changed."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, model_validator
from sqlalchemy import func, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from settlewatch.common import audit
from settlewatch.common.db import transaction
from settlewatch.common.events import Currency, Id
from settlewatch.schema.settlement_files import file_mappings, settlement_accounts
from settlewatch.settlementfiles.csvmap import FileMapping

__all__ = ["PayoutTolerance", "References", "SettlementAccount"]

AccountNumber = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9/ .-]{1,64}$")]


class PayoutTolerance(BaseModel):
    """How far a credit on the account may be from the payout it is (SPEC §16): an amount within
    `amount_minor` of it, a value date within `days` business days."""

    model_config = ConfigDict(extra="forbid")

    amount_minor: Annotated[StrictInt, Field(ge=0, le=100_000_000)] = 0
    days: Annotated[StrictInt, Field(ge=0, le=10)] = 1


class SettlementAccount(BaseModel):
    """A settlement account: by IBAN or the bank's own number, owned by a merchant or by the
    acquirer (a collecting account whose credits are many merchants' money)."""

    model_config = ConfigDict(extra="forbid")

    iban: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}$")] | None = (
        None
    )
    account_number: AccountNumber | None = None
    currency: Currency
    bank_code: Id
    owner: Id | Literal["acquirer"]
    # A merchant's account: that merchant's tolerance; the acquirer's collecting account at a
    # bank: that bank's.
    tolerance: PayoutTolerance | None = None

    @model_validator(mode="after")
    def _one_number(self) -> SettlementAccount:
        if (self.iban is None) == (self.account_number is None):
            raise ValueError("give iban or account_number (one of them)")
        return self

    @property
    def number(self) -> str:
        """How statements name the account (camt ``Acct/Id``, MT940 ``:25:``)."""
        return self.iban or self.account_number or ""


class References:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def put_account(self, account_id: str, account: SettlementAccount) -> bool:
        """Store the account; True when it is new. An account number belongs to one account:
        IntegrityError when another already has it."""
        return await self._upsert(
            settlement_accounts,
            settlement_accounts.c.account_id,
            {
                "account_id": account_id,
                "number": account.number,
                "body": account.model_dump(mode="json", exclude_none=True),
            },
        )

    async def account(self, account_id: str) -> dict[str, Any] | None:
        async with self._engine.connect() as conn:
            body = await conn.scalar(
                select(settlement_accounts.c.body).where(
                    settlement_accounts.c.account_id == account_id
                )
            )
        return None if body is None else {"account_id": account_id, **body}

    async def put_mapping(self, name: str, mapping: FileMapping) -> bool:
        return await self._upsert(
            file_mappings,
            file_mappings.c.name,
            {"name": name, "mapping": mapping.model_dump(mode="json")},
        )

    async def mapping(self, name: str) -> FileMapping | None:
        async with self._engine.connect() as conn:
            stored = await conn.scalar(
                select(file_mappings.c.mapping).where(file_mappings.c.name == name)
            )
        return None if stored is None else FileMapping.model_validate(stored)

    async def _upsert(self, table: Any, key: Any, values: dict[str, Any]) -> bool:
        statement = insert(table).values(values)
        upsert: Any = statement.on_conflict_do_update(
            index_elements=[key],
            set_={
                **{k: statement.excluded[k] for k in values if k != key.name},
                "updated_at": func.now(),
            },
        ).returning(literal_column("xmax = 0").label("inserted"))
        async with transaction(self._engine) as conn:
            inserted = bool((await conn.execute(upsert)).scalar_one())
            audit.describe(status=201 if inserted else 200)
        return inserted
