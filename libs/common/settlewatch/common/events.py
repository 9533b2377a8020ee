"""The event schemas (SPEC §3–4): what the acquirer sends and what travels on Kafka.

The same models validate the HTTP bodies (strictly: integers are integers, times carry an
offset) and describe the records on the topics. A record's value is an envelope
``{"v": 1, "kind": ..., "body": {...}}``; transactions, settlements and merchant profiles are
keyed by ``merchant_id``, so one merchant's events stay in order in one partition.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from ipaddress import ip_address
from typing import Annotated, Any, Literal, NotRequired
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    Strict,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict

from settlewatch.common.findings import FindingType
from settlewatch.common.money import ISO4217_CODES, MAX_MINOR, is_iso4217
from settlewatch.common.pan import PAN_MESSAGE, looks_like_pan

__all__ = [
    "EARLIEST",
    "EXPIRY",
    "LATEST",
    "CalendarYearIn",
    "CalendarYearLoaded",
    "FeeRuleIn",
    "FeeVersionIn",
    "FindingRecord",
    "MaintenanceWindow",
    "MaintenanceWindowIn",
    "mask_account",
    "NEEDS_ORIGINAL",
    "MerchantChanged",
    "MerchantProfile",
    "ReceivingAccount",
    "Pulse",
    "Settlement",
    "SettlementBatch",
    "SettlementLine",
    "TerminalChanged",
    "TerminalIn",
    "Transaction",
    "TransactionBatch",
    "Webhook",
    "PulseRecord",
    "QueryDay",
    "QueryTime",
    "TopicRecord",
    "decode_event",
    "decode_events",
    "decode_finding",
    "finding_json",
    "encode_event",
    "encode_record",
    "profile_default",
    "record_key",
]

MAX_BATCH = 5000
# A payment still unsettled this long after its deadline expires (SPEC §6 settlement.expired):
# the matcher stops watching it, the alerts stop reminding of it.
EXPIRY = timedelta(days=30)
ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


def _no_nul(text: str) -> str:
    """JSON and URLs can escape a NUL (\\u0000, %00), which PostgreSQL text cannot hold, not
    even as a query parameter: refused here rather than failing deep in storage."""
    if "\x00" in text:
        raise ValueError("must not contain the NUL character")
    return text


def _storable(text: str) -> str:
    """Free text a person types is kept, so it must be text PostgreSQL holds (a lone surrogate
    escape is already invalid JSON), and no note or reason may carry a card number (SPEC §3)."""
    _no_nul(text)
    if looks_like_pan(text):
        raise ValueError(PAN_MESSAGE)
    return text


Storable = AfterValidator(_storable)  # for every free-text field (patterned ones are ASCII)
# For a free-text search or filter: not kept, so a card-number-like merchant number may be sought.
Searchable = AfterValidator(_no_nul)
Text = Annotated[str, StringConstraints(min_length=1, max_length=500), Storable]
Region = Annotated[str, StringConstraints(min_length=1, max_length=64), Storable]  # 北京, CN-SH…

# The span of time the matcher reasons about. Every time and date of an event lies inside it,
# so no deadline, expiry or maintenance shift computed from them can leave Python's datetime
# range (year 9999 made the core raise OverflowError). Ingest narrows it further against its
# own clock (SETTLEWATCH_MAX_CLOCK_SKEW); these bounds also hold for a record written straight
# to a topic, which the matcher then dead-letters instead of applying.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_INSTANT_SLA = timedelta(days=30)


def _in_span(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError("must be between 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z")
    return value


def _day_in_span(value: date) -> date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValueError("must be between 2000-01-01 and 2099-12-31")
    return value


# strict: an RFC 3339 string, never a number. The schema's pattern tells clients (and the
# API fuzz test, which then generates times across the span) which years are accepted.
Timestamp = Annotated[
    AwareDatetime,
    Strict(),
    AfterValidator(_in_span),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": "^20[0-9]{2}-",
            "description": "RFC 3339 with an offset, from 2000-01-01T00:00:00Z to before "
            "2100-01-01T00:00:00Z",
        }
    ),
]
Day = Annotated[
    date,
    Strict(),
    AfterValidator(_day_in_span),
    WithJsonSchema({"type": "string", "format": "date", "pattern": "^20[0-9]{2}-"}),
]
# The same spans for a query's bounds (`?from=`): read from text, so not strict.
QueryTime = Annotated[
    AwareDatetime,
    AfterValidator(_in_span),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": "^20[0-9]{2}-"}),
]
QueryDay = Annotated[
    date,
    AfterValidator(_day_in_span),
    WithJsonSchema({"type": "string", "format": "date", "pattern": "^20[0-9]{2}-"}),
]
PositiveMinor = Annotated[StrictInt, Field(gt=0, le=MAX_MINOR)]
SignedMinor = Annotated[StrictInt, Field(ge=-MAX_MINOR, le=MAX_MINOR)]
LocalTime = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


def _currency(code: str) -> str:
    if not is_iso4217(code):
        raise ValueError("must be an ISO 4217 alpha-3 currency code such as CNY")
    return code


Currency = Annotated[
    str,
    AfterValidator(_currency),
    WithJsonSchema({"type": "string", "enum": sorted(ISO4217_CODES)}),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Transactions and settlements arrive by the thousand: they are TypedDicts, which pydantic
# validates about twice as fast as models, and which travel on Kafka exactly as accepted.
_STRICT = ConfigDict(extra="forbid")


# Transaction types that undo or claw back an earlier transaction: they must name it.
NEEDS_ORIGINAL = frozenset({"refund", "void", "reversal", "chargeback"})


@with_config(_STRICT)
class Transaction(TypedDict):
    """A terminal transaction: a sale, or a refund/void/reversal/chargeback of an earlier one
    (``original_txn_id`` is required for those), or money the acquirer moves outside a sale
    (SPEC §11): a ``fee_debit`` it announces (terminal rent, data fee, 欠费补扣), an
    ``adjustment`` either way (``direction`` required)."""

    txn_id: Id
    merchant_id: Id
    terminal_id: Id
    type: Literal["sale", "refund", "void", "reversal", "chargeback", "fee_debit", "adjustment"]
    original_txn_id: NotRequired[Id | None]
    direction: NotRequired[Literal["credit", "debit"] | None]  # of an adjustment
    amount_minor: PositiveMinor
    currency: Currency
    occurred_at: Timestamp
    card_fingerprint: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:+/=-]{1,128}$")]
    rrn: NotRequired[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{1,32}$")] | None]
    stan: NotRequired[Annotated[str, StringConstraints(pattern=r"^[0-9]{1,12}$")] | None]
    auth_code: NotRequired[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{1,12}$")] | None]
    region: NotRequired[Region | None]
    # Which fee rule applies (SPEC §11); a rule for "any" card fits a transaction without it.
    card_type: NotRequired[Literal["debit", "credit"] | None]


@with_config(_STRICT)
class SettlementLine(TypedDict):
    """One transaction inside a bank settlement; refunds carry negative gross and net."""

    txn_id: Id
    gross_minor: SignedMinor
    fee_minor: SignedMinor
    net_minor: SignedMinor
    # The terminal the bank booked it under, when its report says (SPEC §12 books).
    terminal_id: NotRequired[Id | None]


@with_config(_STRICT)
class Settlement(TypedDict):
    """A bank's confirmation that it paid out (or failed to pay out) a set of transactions."""

    settlement_id: Id
    merchant_id: Id
    bank_code: Id
    status: Literal["settled", "failed", "returned"]
    occurred_at: Timestamp
    value_date: NotRequired[Day | None]
    failure_reason: NotRequired[Text | None]
    # How a settlement made from a settlement file's line was tied to its payment (the rule, or
    # "manual"); set by ingest, shown on the payment (SPEC §9).
    matched_by: NotRequired[Id | None]
    items: Annotated[list[SettlementLine], Field(min_length=1, max_length=MAX_BATCH)]


@with_config(_STRICT)
class TransactionBatch(TypedDict):
    items: Annotated[list[Transaction], Field(min_length=1, max_length=MAX_BATCH)]


@with_config(_STRICT)
class SettlementBatch(TypedDict):
    items: Annotated[list[Settlement], Field(min_length=1, max_length=MAX_BATCH)]


def _is_loopback_address(host: str) -> bool:
    """Whether the host is written as a loopback address (127.0.0.1, ::1) — not a name that
    merely starts with ``127.``."""
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _webhook_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    loopback = parts.hostname == "localhost" or _is_loopback_address(parts.hostname)
    if parts.scheme != "https" and not loopback:
        raise ValueError("must use https unless the host is loopback")
    return url


_WHSEC = re.compile(r"^whsec_[A-Za-z0-9+/]{16,}={0,2}$")


def _webhook_secret(secret: SecretStr) -> SecretStr:
    if not _WHSEC.fullmatch(secret.get_secret_value()):
        raise ValueError("must be whsec_ followed by base64 (at least 12 bytes)")
    return secret


class Webhook(_Model):
    url: Annotated[str, StringConstraints(max_length=2000), Storable, AfterValidator(_webhook_url)]
    secret: Annotated[SecretStr, AfterValidator(_webhook_secret)]


def _timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone such as Asia/Shanghai") from None
    return name


def _instant_sla(value: timedelta) -> timedelta:
    if not timedelta(0) < value <= MAX_INSTANT_SLA:
        raise ValueError("must be a positive ISO 8601 duration of at most P30D, such as PT2H")
    return value


class FeeRuleIn(_Model):
    """round-half-up(gross × rate_bps / 10000) + fixed_minor, capped at cap_minor (SPEC §11),
    for the payments of this card type and channel (instant: an instant payout)."""

    card_type: Literal["debit", "credit", "any"] = "any"
    channel: Literal["instant", "scheduled", "any"] = "any"
    rate_bps: Annotated[StrictInt, Field(ge=0, le=10_000)] = 0
    fixed_minor: Annotated[StrictInt, Field(ge=0, le=MAX_MINOR)] = 0
    cap_minor: Annotated[StrictInt, Field(ge=0, le=MAX_MINOR)] | None = None


class FeeVersionIn(_Model):
    """The rules in force from `effective_from` (the merchant's local date); the first rule
    that fits a payment decides its fee."""

    effective_from: Day
    rules: Annotated[list[FeeRuleIn], Field(min_length=1, max_length=20)]


class ReceivingAccount(_Model):
    """Where the merchant's money is paid (收款账户): shown masked in every answer and document."""

    holder: Text
    bank_name: Text
    number: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9 ]{6,40}$")]  # card, account, IBAN

    @property
    def masked(self) -> str:
        return mask_account(self.number)


def mask_account(number: str) -> str:
    """6222 **** **** 1234 style: the first four and the last four, never more."""
    digits = number.replace(" ", "")
    return f"{digits[:4]} **** **** {digits[-4:]}" if len(digits) >= 12 else f"**** {digits[-4:]}"


class MerchantProfile(_Model):
    """How and when a merchant is paid (SPEC §4–5)."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200), Storable]
    settlement_bank: Id
    settlement_cycle: Annotated[str, StringConstraints(pattern=r"^(T[0-9]|D[0-9]|instant)$")]
    instant_sla: Annotated[timedelta, Strict(), AfterValidator(_instant_sla)] | None = Field(
        None, validate_default=True
    )
    timezone: Annotated[str, AfterValidator(_timezone)] = "Asia/Shanghai"
    calendar: Literal["CN", "weekdays"] = "CN"
    cutoff_time: LocalTime = "23:00"
    due_time: Annotated[
        str, StringConstraints(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")
    ] = "24:00"
    mdr_bps: Annotated[StrictInt, Field(ge=0, le=10_000)] = 60
    fee_cap_minor: Annotated[StrictInt, Field(ge=0, le=MAX_MINOR)] | None = None
    # Replaces mdr_bps/fee_cap_minor when given (those are a one-rule schedule).
    fee_schedule: Annotated[list[FeeVersionIn], Field(min_length=1, max_length=50)] | None = None
    amount_tolerance_minor: Annotated[StrictInt, Field(ge=0, le=MAX_MINOR)] = 1
    locale: Literal["zh-CN", "en"] = "zh-CN"
    webhook: Webhook | None = None
    receiving_account: ReceivingAccount | None = None

    @field_validator("fee_schedule")
    @classmethod
    def _versions_in_order(cls, value: list[FeeVersionIn] | None) -> list[FeeVersionIn] | None:
        for i, (before, after) in enumerate(zip(value or [], (value or [])[1:], strict=False)):
            if after.effective_from <= before.effective_from:
                raise ValueError(
                    f"versions must have increasing effective_from dates: version {i + 1} "
                    f"({after.effective_from}) is not after version {i} ({before.effective_from})"
                )
        return value

    @field_validator("instant_sla")
    @classmethod
    def _sla_for_instant(cls, value: timedelta | None, info: ValidationInfo) -> timedelta | None:
        if value is None and info.data.get("settlement_cycle") == "instant":
            raise ValueError("is required when settlement_cycle is instant")
        return value


MAX_WINDOW = timedelta(days=31)


def profile_default(field: str) -> Any:
    """The default of a merchant-profile field: stated once, in MerchantProfile."""
    return MerchantProfile.model_fields[field].default


class MaintenanceWindowIn(_Model):
    """A bank's announced maintenance: deadlines falling inside move to its end + 2 h.
    A window lasts at most 31 days: longer is not maintenance, and would silence a bank's
    overdue payments and incidents for as long."""

    bank_code: Id
    starts_at: Timestamp
    ends_at: Timestamp
    reason: Text

    @field_validator("ends_at")
    @classmethod
    def _after_start(cls, value: datetime, info: ValidationInfo) -> datetime:
        starts_at = info.data.get("starts_at")
        if starts_at is not None and value <= starts_at:
            raise ValueError("must be after starts_at")
        if starts_at is not None and value - starts_at > MAX_WINDOW:
            raise ValueError("must be at most 31 days after starts_at")
        return value


class MaintenanceWindow(MaintenanceWindowIn):
    """A stored window; its id is derived from bank and times, so resending it is harmless."""

    id: Id


Year = Annotated[StrictInt, Field(ge=EARLIEST.year, lt=LATEST.year)]


class CalendarYearIn(_Model):
    """A year of a business calendar as published (SPEC §10): the days off that would be
    weekdays (weekend days may be listed too) and the weekend days declared working days."""

    holidays: Annotated[list[Day], Field(max_length=366)]
    workdays: Annotated[list[Day], Field(max_length=106)] = []
    source: Text
    published_at: Timestamp | None = None

    def problems(self, year: int) -> list[dict[str, Any]]:
        """What makes these days wrong for `year`, one problem per day (none: fine)."""
        problems: list[dict[str, Any]] = []
        for name, days in (("holidays", self.holidays), ("workdays", self.workdays)):
            for i, day in enumerate(days):
                if day.year != year:
                    problems.append({"loc": [name, i], "msg": f"must be a day of {year}"})
        holidays = set(self.holidays)
        for i, day in enumerate(self.workdays):
            if day in holidays:
                problems.append({"loc": ["workdays", i], "msg": "is also listed as a holiday"})
            elif day.weekday() < 5:
                msg = "must be a Saturday or Sunday (a weekday is a working day already)"
                problems.append({"loc": ["workdays", i], "msg": msg})
        return problems


class CalendarYearLoaded(CalendarYearIn):
    """A loaded year as it travels to the matcher; ``version`` counts the loads of the year."""

    calendar: Literal["CN"]
    year: Year
    version: Annotated[StrictInt, Field(ge=1)]

    @model_validator(mode="after")
    def _days_of_the_year(self) -> CalendarYearLoaded:
        if problems := self.problems(self.year):
            raise ValueError(
                "; ".join(f"{p['loc'][0]}[{p['loc'][1]}] {p['msg']}" for p in problems)
            )
        return self


class MerchantChanged(_Model):
    """A merchant profile as the matcher sees it (the webhook and its secret stay in the DB)."""

    merchant_id: Id
    profile: MerchantProfile


class TerminalIn(_Model):
    """A POS terminal as registered (SPEC §12): whose it is, where it stands, and, after a
    migration, the terminal it replaces."""

    merchant_id: Id
    region: Region | None = None
    replaces: Id | None = None
    status: Literal["active", "retired"] = "active"


class TerminalChanged(TerminalIn):
    terminal_id: Id


class Pulse(_Model):
    """Ingest's clock: every record it acknowledged before ``at`` precedes this one (SPEC §5)."""

    at: Timestamp
    source: str


EventKind = Literal[
    "transaction", "settlement", "merchant", "terminal", "maintenance", "calendar", "pulse"
]


def encode_event(kind: EventKind, body_json: bytes) -> bytes:
    """The record value for a body already serialised with ``model_dump_json``."""
    return b'{"v":1,"kind":"' + kind.encode() + b'","body":' + body_json + b"}"


class TransactionRecord(TypedDict):
    v: int
    kind: Literal["transaction"]
    body: Transaction


class SettlementRecord(TypedDict):
    v: int
    kind: Literal["settlement"]
    body: Settlement


class MerchantRecord(TypedDict):
    v: int
    kind: Literal["merchant"]
    body: MerchantChanged


class TerminalRecord(TypedDict):
    v: int
    kind: Literal["terminal"]
    body: TerminalChanged


class MaintenanceRecord(TypedDict):
    v: int
    kind: Literal["maintenance"]
    body: MaintenanceWindow


class CalendarRecord(TypedDict):
    v: int
    kind: Literal["calendar"]
    body: CalendarYearLoaded


class PulseRecord(TypedDict):
    v: int
    kind: Literal["pulse"]
    body: Pulse


TopicRecord = Annotated[
    TransactionRecord
    | SettlementRecord
    | MerchantRecord
    | TerminalRecord
    | MaintenanceRecord
    | CalendarRecord
    | PulseRecord,
    Field(discriminator="kind"),
]
_RECORD: TypeAdapter[TopicRecord] = TypeAdapter(TopicRecord)
_RECORDS: TypeAdapter[list[TopicRecord]] = TypeAdapter(list[TopicRecord])


class FindingRecord(TypedDict):
    """A finding on the findings topic (SPEC §6), keyed by ``merchant_id`` (empty for bank-wide
    and on-call ones). ``id`` is type + subject, so a replayed finding is the same finding;
    ``state`` is ``open``, or ``resolved`` once what it reported is over; ``at`` is the matcher
    clock when it was decided."""

    id: str
    type: FindingType
    state: Literal["open", "resolved"]
    at: AwareDatetime
    merchant_id: str | None
    txn_id: str | None
    evidence: dict[str, Any]


_FINDING: TypeAdapter[FindingRecord] = TypeAdapter(FindingRecord)


def finding_json(finding: FindingRecord) -> dict[str, Any]:
    """The finding as JSON-ready values (as it is stored in the outbox and published)."""
    body: dict[str, Any] = _FINDING.dump_python(finding, mode="json")
    return body


def decode_finding(value: bytes) -> FindingRecord:
    """A record value of the findings topic, validated (ValidationError, a ValueError)."""
    return _FINDING.validate_json(value)


def encode_record(record: TopicRecord) -> bytes:
    """A decoded record as a record value again (it decodes to an equal record)."""
    return _RECORD.dump_json(record)


def record_key(record: TopicRecord) -> bytes | None:
    """The key ingest published `record` under: its merchant, or none for bank-wide ones."""
    body = record["body"]
    if isinstance(body, MerchantChanged | TerminalChanged):
        return body.merchant_id.encode()
    if isinstance(body, dict):
        return body["merchant_id"].encode()
    return None


def decode_event(value: bytes) -> TopicRecord:
    """A record value from the transactions or settlements topic, validated (ValidationError)."""
    return _RECORD.validate_json(value)


def decode_events(values: Sequence[bytes]) -> list[TopicRecord | ValidationError]:
    """Many record values at once (one validation call is much faster than one per record); a
    value that is not a valid record gives its ValidationError in its place."""
    try:
        records = _RECORDS.validate_json(b"[" + b",".join(values) + b"]")
        if len(records) == len(values):  # else a value held several documents
            return list(records)
    except ValidationError:
        pass  # find which ones (a value that is not JSON also breaks the joined document)
    decoded: list[TopicRecord | ValidationError] = []
    for value in values:
        try:
            decoded.append(_RECORD.validate_json(value))
        except ValidationError as exc:
            decoded.append(exc)
    return decoded
