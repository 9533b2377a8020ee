"""Configuration from the environment (SPEC §2).

One frozen settings class per process kind, built once in ``__main__`` and passed down; nothing
reads the environment at import time. Every field is named after its environment variable so a
validation error tells the operator exactly which variable to fix.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from settlewatch.common.errors import ConfigError
from settlewatch.common.money import ISO4217_CODES
from settlewatch.common.rate_limits import parse_rate_limit
from settlewatch.common.sealing import Sealer, parse_keys
from settlewatch.common.webhook_guard import allowed_networks

__all__ = [
    "AlertsSettings",
    "ApiToken",
    "CommonSettings",
    "ConfigError",
    "ConsoleSettings",
    "IngestSettings",
    "MatcherSettings",
    "ReconSettings",
    "ServiceSettings",
    "StackSettings",
    "approval_limits",
    "load_settings",
]

_ID = r"[A-Za-z0-9._:-]{1,64}"
SCOPE = re.compile(rf"acquirer|acquirer:read|merchant:{_ID}")
_DB_SCHEMES = ("postgresql+asyncpg://", "postgresql://", "postgres://")


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be a positive ISO 8601 duration such as PT1S")
    return value


PositiveDuration = Annotated[timedelta, AfterValidator(_positive)]
Port = Annotated[int, Field(ge=1, le=65535)]


class ApiToken(BaseModel):
    """A bearer token and the scope it grants: ``acquirer`` or ``merchant:<id>``."""

    model_config = ConfigDict(frozen=True)

    secret: SecretStr
    scope: str


def _rate(text: str) -> str:
    parse_rate_limit(text)  # refused at start, with the reason, rather than at a request
    return text


def _parse_tokens(raw: object) -> object:
    """``token=scope,token=scope`` → ApiToken list; anything else is left to pydantic."""
    if not isinstance(raw, str):
        return raw
    tokens: list[ApiToken] = []
    for number, entry in enumerate(filter(None, (e.strip() for e in raw.split(","))), start=1):
        secret, sep, scope = entry.rpartition("=")
        # Never echo the token itself: config errors end up in logs.
        if not sep or not secret:
            raise ValueError(f"entry {number} is not of the form token=scope")
        if not SCOPE.fullmatch(scope):
            raise ValueError(
                f"entry {number} has scope {scope!r}; use acquirer, acquirer:read or merchant:<id>"
            )
        tokens.append(ApiToken(secret=SecretStr(secret), scope=scope))
    return tuple(tokens)


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_ignore_empty=True)

    data_dir: Path = Field(Path(".data"), validation_alias="SETTLEWATCH_DATA_DIR")
    topic_prefix: str = Field(
        "settlewatch",
        pattern=r"^[A-Za-z0-9._-]{1,100}$",
        validation_alias="SETTLEWATCH_TOPIC_PREFIX",
    )
    topic_partitions: int = Field(
        12, ge=1, le=1000, validation_alias="SETTLEWATCH_TOPIC_PARTITIONS"
    )
    topic_replication_factor: int = Field(
        1, ge=1, le=32, validation_alias="SETTLEWATCH_TOPIC_REPLICATION_FACTOR"
    )
    kafka_enable_idempotence: bool = Field(False, validation_alias="KAFKA_ENABLE_IDEMPOTENCE")
    host: str = Field("127.0.0.1", validation_alias="SETTLEWATCH_HOST")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias="SETTLEWATCH_LOG_LEVEL"
    )
    api_tokens: Annotated[tuple[ApiToken, ...], NoDecode] = Field(
        (), validation_alias="SETTLEWATCH_API_TOKENS"
    )

    _tokens = field_validator("api_tokens", mode="before")(_parse_tokens)
    # Requests per token and service process (SPEC §14), in the `limits` notation.
    rate_limit: Annotated[str, AfterValidator(_rate)] = Field(
        "1000/second", validation_alias="SETTLEWATCH_RATE_LIMIT"
    )

    @field_validator("database_url", mode="after", check_fields=False)
    @classmethod
    def _asyncpg_url(cls, value: str | None) -> str | None:
        """Accept the URL forms operators paste (postgres://, postgresql://) and use asyncpg."""
        if value is None:
            return None
        for scheme in _DB_SCHEMES:
            if value.startswith(scheme):
                return "postgresql+asyncpg://" + value.removeprefix(scheme)
        raise ValueError("must be a PostgreSQL URL such as postgresql://user@host:5432/db")


def _networks(text: str) -> str:
    allowed_networks(text)  # refused at start, with the reason
    return text


class ServiceSettings(_Settings):
    """What every service process has: its own port, each under its own variable (INGEST_PORT,
    MATCHER_PORT, ALERTS_PORT, RECON_PORT, CONSOLE_PORT)."""

    port: Port


class CommonSettings(ServiceSettings):
    """What every service on the events path needs: where the database and the broker are."""

    database_url: str = Field(validation_alias="DATABASE_URL")
    kafka_bootstrap_servers: str = Field(min_length=1, validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    # Networks webhooks may reach though not public (SPEC §14): for development only.
    webhook_allow_private: Annotated[str, AfterValidator(_networks)] = Field(
        "", validation_alias="SETTLEWATCH_WEBHOOK_ALLOW_PRIVATE"
    )
    # The largest request body any route takes (ingest's file uploads have their own).
    max_body_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, validation_alias="SETTLEWATCH_MAX_BODY_BYTES"
    )
    # Failed authentications per client address and service process before 429 (common.gate).
    auth_failure_limit: Annotated[str, AfterValidator(_rate)] = Field(
        "100/minute", validation_alias="SETTLEWATCH_AUTH_FAILURE_LIMIT"
    )


def _keys(secret: SecretStr) -> SecretStr:
    # Refused at start, with the reason (never the key).
    if not parse_keys(secret.get_secret_value()):
        raise ValueError("holds no key")
    return secret


class _SealsSecrets(_Settings):
    """The services that read or write webhook secrets: encrypted at rest (SPEC §14)."""

    secret_key: Annotated[SecretStr, AfterValidator(_keys)] = Field(
        validation_alias="SETTLEWATCH_SECRET_KEY"
    )

    def sealer(self) -> Sealer:
        return Sealer(parse_keys(self.secret_key.get_secret_value()))


class _Ticks(_Settings):
    """The clock's period (SPEC §5): ingest pulses at it and the matcher checks deadlines at it,
    so an overdue finding comes within one period (and the broker's hops) of `due_at`. One
    setting for both: a matcher ticking more often than the pulses would check nothing new."""

    timer_interval: PositiveDuration = Field(
        timedelta(seconds=1), validation_alias="SETTLEWATCH_TIMER_INTERVAL"
    )


class IngestSettings(CommonSettings, _SealsSecrets, _Ticks):
    port: Port = Field(8001, validation_alias="INGEST_PORT")
    # After a webhook secret is replaced, the old one still signs for this long (SPEC §14).
    webhook_secret_overlap: PositiveDuration = Field(
        timedelta(hours=24), validation_alias="SETTLEWATCH_WEBHOOK_SECRET_OVERLAP"
    )
    max_clock_skew: PositiveDuration = Field(
        timedelta(minutes=5), validation_alias="SETTLEWATCH_MAX_CLOCK_SKEW"
    )
    # Where clients reach recon: ingest answers the routes that moved there (settlement files,
    # payouts, the desk) with 308 to it for one release. Unset: the host the client asked, on
    # RECON_PORT.
    recon_url: str | None = Field(None, validation_alias="SETTLEWATCH_RECON_URL")
    recon_port: Port = Field(8004, validation_alias="RECON_PORT")


def approval_limits(text: str) -> dict[str, int]:
    """`CNY=100000,USD=20000`: per currency, the largest write-off (minor units) one person may
    make alone; a currency not named needs no second person."""
    limits: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        currency, _, amount = part.partition("=")
        currency = currency.strip().upper()
        if currency not in ISO4217_CODES or not amount.strip().isdigit():
            raise ValueError(f"{part!r}: expected CURRENCY=minor units, e.g. CNY=100000")
        limits[currency] = int(amount)
    return limits


def _approval(text: str) -> str:
    approval_limits(text)  # refused at start, with the reason
    return text


class ReconSettings(CommonSettings):
    port: Port = Field(8004, validation_alias="RECON_PORT")
    max_clock_skew: PositiveDuration = Field(
        timedelta(minutes=5), validation_alias="SETTLEWATCH_MAX_CLOCK_SKEW"
    )
    max_file_bytes: int = Field(
        256 * 1024 * 1024, ge=1024, validation_alias="SETTLEWATCH_MAX_FILE_BYTES"
    )
    # A file's parse is stopped after this long (its file rejected, the parsing process
    # replaced): no import waits behind a stuck one for longer.
    parse_timeout: PositiveDuration = Field(
        timedelta(minutes=5), validation_alias="SETTLEWATCH_PARSE_TIMEOUT"
    )
    # Business days (PRC calendar) after its value date before a payout is reported missing,
    # or a statement entry nobody expected is reported unexpected.
    payout_grace: int = Field(1, ge=0, le=30, validation_alias="SETTLEWATCH_PAYOUT_GRACE")
    # Nothing is judged missing or unexpected until no file has been imported for this long: the
    # files of one day come one after the other (a report, then its statements).
    files_quiet: PositiveDuration = Field(
        timedelta(seconds=20), validation_alias="SETTLEWATCH_FILES_QUIET"
    )
    # Check camt statements against their ISO 20022 schema: a warning, never a rejection (it
    # reads the file a second time).
    validate_xsd: bool = Field(False, validation_alias="SETTLEWATCH_VALIDATE_XSD")
    # Four eyes (SPEC §16): a write-off above this, per currency, waits for a second token.
    write_off_approval: Annotated[str, AfterValidator(_approval)] = Field(
        "", validation_alias="SETTLEWATCH_WRITE_OFF_APPROVAL"
    )


class MatcherSettings(CommonSettings, _Ticks):
    port: Port = Field(8002, validation_alias="MATCHER_PORT")
    session_timeout: PositiveDuration = Field(
        timedelta(seconds=10), validation_alias="MATCHER_SESSION_TIMEOUT"
    )
    region_jump_window: PositiveDuration = Field(
        timedelta(minutes=30), validation_alias="SETTLEWATCH_REGION_JUMP_WINDOW"
    )
    # A font with Chinese glyphs for the evidence PDF: a .ttf/.otf, or a collection (its SC face).
    pdf_font: Path = Field(
        Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
        validation_alias="SETTLEWATCH_PDF_FONT",
    )
    state_retention: PositiveDuration = Field(
        timedelta(days=35), validation_alias="SETTLEWATCH_STATE_RETENTION"
    )


class AlertsSettings(CommonSettings, _SealsSecrets):
    port: Port = Field(8003, validation_alias="ALERTS_PORT")
    group_wait: PositiveDuration = Field(
        timedelta(seconds=10), validation_alias="SETTLEWATCH_GROUP_WAIT"
    )
    alertmanager_url: str | None = Field(None, validation_alias="ALERTMANAGER_URL")
    session_timeout: PositiveDuration = Field(
        timedelta(seconds=10), validation_alias="ALERTS_SESSION_TIMEOUT"
    )
    # Open overdue and failed alerts are re-sent to their merchant once per period this long.
    # One wall-clock deadline per webhook attempt: name lookup, connect, send and answer.
    webhook_timeout: PositiveDuration = Field(
        timedelta(seconds=10), validation_alias="SETTLEWATCH_WEBHOOK_TIMEOUT"
    )
    remind_every: PositiveDuration = Field(
        timedelta(days=1), validation_alias="SETTLEWATCH_REMIND_EVERY"
    )
    alert_retention: PositiveDuration = Field(
        timedelta(days=90), validation_alias="SETTLEWATCH_ALERT_RETENTION"
    )


class ConsoleSettings(ServiceSettings, _SealsSecrets):
    """The console (SPEC §15): no database or broker of its own; it calls the four services'
    APIs with the signed-in token, and seals that token into the session cookie with the
    secret key."""

    port: Port = Field(8000, validation_alias="CONSOLE_PORT")
    ingest_port: Port = Field(8001, validation_alias="INGEST_PORT")
    matcher_port: Port = Field(8002, validation_alias="MATCHER_PORT")
    alerts_port: Port = Field(8003, validation_alias="ALERTS_PORT")
    recon_port: Port = Field(8004, validation_alias="RECON_PORT")
    # Where each service answers; by default its port on SETTLEWATCH_HOST.
    ingest_url: str | None = Field(None, validation_alias="SETTLEWATCH_INGEST_URL")
    matcher_url: str | None = Field(None, validation_alias="SETTLEWATCH_MATCHER_URL")
    alerts_url: str | None = Field(None, validation_alias="SETTLEWATCH_ALERTS_URL")
    recon_url: str | None = Field(None, validation_alias="SETTLEWATCH_RECON_URL")
    # The largest settlement file an upload may carry (recon's own limit, the same variable).
    max_file_bytes: int = Field(
        256 * 1024 * 1024, ge=1024, validation_alias="SETTLEWATCH_MAX_FILE_BYTES"
    )
    # A session unused this long is over: the next page asks to sign in again.
    idle: PositiveDuration = Field(timedelta(hours=8), validation_alias="SETTLEWATCH_CONSOLE_IDLE")

    def service_url(self, service: Literal["ingest", "matcher", "alerts", "recon"]) -> str:
        url: str | None = getattr(self, f"{service}_url")
        port: int = getattr(self, f"{service}_port")
        return (url or f"http://{self.host}:{port}").rstrip("/")


class StackSettings(_Settings):
    """``settlewatch up``: embedded parts unless DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS are set."""

    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    kafka_bootstrap_servers: str | None = Field(None, validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    broker_port: Port = Field(9092, validation_alias="BROKER_PORT")
    console_port: Port = Field(8000, validation_alias="CONSOLE_PORT")
    ingest_port: Port = Field(8001, validation_alias="INGEST_PORT")
    matcher_port: Port = Field(8002, validation_alias="MATCHER_PORT")
    alerts_port: Port = Field(8003, validation_alias="ALERTS_PORT")
    recon_port: Port = Field(8004, validation_alias="RECON_PORT")
    # ≈ 350 B of broker memory each: the embedded broker is restarted empty beyond this.
    embedded_broker_max_records: int = Field(
        500_000, ge=1, validation_alias="SETTLEWATCH_EMBEDDED_BROKER_MAX_RECORDS"
    )
    # `settlewatch calendar load` posts to ingest's API and `settlewatch import` to recon's, as
    # this acquirer token.
    ingest_url: str | None = Field(None, validation_alias="SETTLEWATCH_INGEST_URL")
    recon_url: str | None = Field(None, validation_alias="SETTLEWATCH_RECON_URL")
    token: SecretStr | None = Field(None, validation_alias="SETTLEWATCH_TOKEN")


S = TypeVar("S", bound=_Settings)


def load_settings(cls: type[S]) -> S:
    """Build settings from the environment, turning validation errors into one readable message."""
    try:
        return cls()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
