"""Findings become alerts; alerts go `open` → `acknowledged` → `resolved` (SPEC §6).

An alert's id is its finding's id (type + subject), so a replayed or duplicated finding never
creates a second alert. Transitions only move forward: a stale `open` after a `resolved` (a
replay, a zombie consumer) changes nothing, so findings can be absorbed at least once and in
any batching. Follow-ups (`settlement.settled_late`, `settlement.recovered`) and
notices (`bank.maintenance_scheduled`) tell the merchant of something with nothing left to do:
they are created resolved (common.findings says which types are).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from settlewatch.alerts.core.causes import Window, probable_cause
from settlewatch.alerts.core.summaries import Locale, summary
from settlewatch.common.errors import BadInput
from settlewatch.common.events import FindingRecord, decode_finding, profile_default
from settlewatch.common.findings import KINDS, kind

__all__ = [
    "BANK_DEPENDENT",
    "AlertStatus",
    "ReceivedFinding",
    "Invalid",
    "NewAlert",
    "Note",
    "Recipient",
    "Resolution",
    "absorb",
    "after_action",
    "note",
]

AlertStatus = Literal["open", "acknowledged", "resolved"]
# Findings whose cause may lie with the bank: they carry probable_cause.
BANK_DEPENDENT = frozenset(t for t, k in KINDS.items() if k.bank_dependent)
SYSTEM = "settlewatch"
Note = dict[str, str]


class Invalid(BadInput):
    """An action the alert's status does not allow (ack of a resolved alert)."""


@dataclass(frozen=True)
class ReceivedFinding:
    """A finding as the matcher publishes it."""

    id: str
    type: str
    state: Literal["open", "resolved"]
    at: datetime
    merchant_id: str | None
    txn_id: str | None
    evidence: dict[str, Any]

    @classmethod
    def from_record(cls, record: FindingRecord) -> ReceivedFinding:
        return cls(**record)

    @classmethod
    def from_json(cls, value: bytes) -> ReceivedFinding:
        """A record value of the findings topic (ValueError when it is not a finding)."""
        return cls.from_record(decode_finding(value))


@dataclass(frozen=True)
class Recipient:
    """What the alerts need of a merchant profile."""

    locale: Locale = profile_default("locale")
    timezone: str = profile_default("timezone")
    has_webhook: bool = False


@dataclass
class NewAlert:
    alert_id: str
    type: str
    status: AlertStatus
    merchant_id: str | None
    txn_id: str | None
    txn_ids: list[str] | None
    bank_code: str | None
    probable_cause: str | None
    summary: str
    evidence: dict[str, Any]
    notes: list[Note]
    notify: bool  # to be delivered to the merchant's webhook
    oncall: bool  # to be pushed to Alertmanager
    created_at: datetime


@dataclass(frozen=True)
class Resolution:
    alert_id: str
    note: Note


def note(at: datetime, by: str, action: str, text: str) -> Note:
    return {"at": at.isoformat(), "by": by, "action": action, "note": text}


def absorb(
    findings: Iterable[ReceivedFinding],
    statuses: Mapping[str, AlertStatus],
    recipients: Mapping[str, Recipient],
    windows: Mapping[str, list[Window]],
    incident_banks: frozenset[str],
    now: datetime,
) -> tuple[list[NewAlert], list[Resolution]]:
    """The alerts to create and to resolve for `findings`, given the current status of the
    alerts they name (`statuses`; absent = no such alert yet)."""
    new: dict[str, NewAlert] = {}
    resolutions: list[Resolution] = []
    current = dict(statuses)
    for finding in findings:
        status = current.get(finding.id)
        resolved = note(now, SYSTEM, "resolved", _because(finding))
        if status is None:
            alert = _new_alert(finding, recipients, windows, incident_banks, now)
            if finding.state == "resolved":
                # Only a resolution came (its opening was lost to a crash of another era, or
                # the order was broken): kept for the record, too late to tell anyone.
                alert.status, alert.notify = "resolved", False
                alert.notes.append(resolved)
            new[alert.alert_id] = alert
            current[alert.alert_id] = alert.status
        elif status in ("open", "acknowledged") and finding.state == "resolved":
            current[finding.id] = "resolved"
            if finding.id in new:  # opened and resolved in one batch
                new[finding.id].status = "resolved"
                new[finding.id].notes.append(resolved)
            else:
                resolutions.append(Resolution(finding.id, resolved))
    return list(new.values()), resolutions


def _because(finding: ReceivedFinding) -> str:
    """Why a finding was resolved: what its resolution says (a hand match, a write-off, the
    credit arriving), else what resolves its type."""
    said = finding.evidence.get("resolution")
    if isinstance(said, str):
        return said
    return kind(finding.type).resolves


def _new_alert(
    finding: ReceivedFinding,
    recipients: Mapping[str, Recipient],
    windows: Mapping[str, list[Window]],
    incident_banks: frozenset[str],
    now: datetime,
) -> NewAlert:
    evidence = finding.evidence
    about = kind(finding.type)
    bank = evidence.get("bank_code")
    cause = None
    if about.bank_dependent and bank:
        occurred = evidence.get("occurred_at")
        since = datetime.fromisoformat(occurred) if occurred else finding.at
        cause = probable_cause(windows.get(bank, []), since, now, bank in incident_banks)
    oncall = "oncall" in about.audience
    recipient = recipients.get(finding.merchant_id or "", Recipient())
    notes: list[Note] = []
    status: AlertStatus = "open"
    if about.follow_up:
        status = "resolved"
        notes.append(note(now, SYSTEM, "resolved", about.resolves))
    return NewAlert(
        alert_id=finding.id,
        type=finding.type,
        status=status,
        merchant_id=finding.merchant_id,
        txn_id=finding.txn_id,
        txn_ids=evidence.get("txn_ids"),
        bank_code=bank,
        probable_cause=cause,
        summary=summary(
            finding.type,
            evidence,
            locale=recipient.locale,
            timezone=recipient.timezone,
            probable_cause=cause,
        )
        if not oncall
        else oncall_summary(finding.type, evidence),
        evidence=evidence,
        notes=notes,
        notify=not oncall and recipient.has_webhook,
        oncall=oncall,
        created_at=now,
    )


def oncall_summary(alert_type: str, evidence: Mapping[str, Any]) -> str:
    """On-call alerts are read by SREs: English, with the numbers that triggered them."""
    return summary(alert_type, evidence, locale="en", timezone="UTC", probable_cause=None)


def after_action(status: AlertStatus, action: Literal["ack", "resolve"]) -> AlertStatus:
    """The status after a person's ack or resolve; Invalid when the status does not allow it."""
    if status == "resolved":
        verb = "acknowledged" if action == "ack" else "resolved again"
        raise Invalid(f"the alert is already resolved; it cannot be {verb}")
    if action == "ack":
        if status == "acknowledged":
            raise Invalid("the alert is already acknowledged")
        return "acknowledged"
    return "resolved"
