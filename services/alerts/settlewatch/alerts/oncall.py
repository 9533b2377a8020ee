"""On-call (SPEC §6): `bank.incident` judged over the sliding hour, and the push of on-call
alerts (bank incidents, `pipeline.stalled`, `calendar.missing`) to Alertmanager v2.

Active alerts are pushed again every minute so Alertmanager does not time them out; a resolved
one is pushed once more with `endsAt`. A bank incident during an announced maintenance window of
its bank is recorded (the alert exists, merchants' alerts name it) but not pushed. Without
ALERTMANAGER_URL nothing is pushed and nothing else changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from settlewatch.alerts.core.incidents import SLIDING_WINDOW, BankDue, judge, threshold
from settlewatch.alerts.core.lifecycle import SYSTEM, NewAlert, note, oncall_summary
from settlewatch.alerts.metrics import ALERTMANAGER_PUSHES
from settlewatch.alerts.repository.alerts import Alerts
from settlewatch.alerts.repository.reads import Reads
from settlewatch.alerts.repository.rows import AlertRow
from settlewatch.common.findings import kind

__all__ = ["REPUSH", "RUNBOOK", "OnCall", "alertmanager_alert", "incident_alert"]

_log = logging.getLogger(__name__)
REPUSH = timedelta(minutes=1)
RUNBOOK = "https://github.com/settlewatch/settlewatch/blob/main/docs/runbook.md"


def incident_alert(due: BankDue, clock: datetime, now: datetime) -> NewAlert:
    """A new bank incident, named after the bank and the matcher clock that opened it."""
    evidence = {
        "bank_code": due.bank_code,
        "fell_due": due.fell_due,
        "overdue": due.overdue,
        "threshold": threshold(due.fell_due),
        "window_start": (clock - SLIDING_WINDOW).isoformat(),
        "window_end": clock.isoformat(),
    }
    return NewAlert(
        alert_id=f"bank.incident:{due.bank_code}:{clock:%Y%m%dT%H%M%SZ}",
        type="bank.incident",
        status="open",
        merchant_id=None,
        txn_id=None,
        txn_ids=None,
        bank_code=due.bank_code,
        probable_cause=None,
        summary=oncall_summary("bank.incident", evidence),
        evidence=evidence,
        notes=[],
        notify=False,
        oncall=True,
        created_at=now,
    )


def alertmanager_alert(row: AlertRow, ends_at: datetime | None) -> dict[str, Any]:
    """One alert of Alertmanager's v2 `POST /api/v2/alerts` body."""
    about = kind(row.type)
    labels = {
        "alertname": about.alertname or row.type,  # the registry names every on-call type
        "severity": about.severity,
        "service": "settlewatch",
    }
    if row.bank_code:
        labels["bank_code"] = row.bank_code
    if row.type == "calendar.missing":
        labels |= {"calendar": str(row.evidence["calendar"]), "year": str(row.evidence["year"])}
    runbook = f"{RUNBOOK}#{labels['alertname'].lower()}"
    alert: dict[str, Any] = {
        "labels": labels,
        "annotations": {
            "summary": row.summary,
            "alert_id": row.alert_id,
            "runbook_url": runbook,
        },
        "startsAt": row.created_at.isoformat(),
    }
    if ends_at is not None:
        alert["endsAt"] = ends_at.isoformat()
    return alert


class OnCall:
    def __init__(
        self,
        alerts: Alerts,
        reads: Reads,
        *,
        clock: Callable[[], datetime],
        client: httpx.AsyncClient,
        alertmanager_url: str | None,
        judge_every: float = 5.0,
        push_every: float = 1.0,
    ) -> None:
        self._alerts, self._reads = alerts, reads
        self._clock = clock
        self._client = client
        self._url = alertmanager_url.rstrip("/") + "/api/v2/alerts" if alertmanager_url else None
        self._judge_every = judge_every
        self._push_every = push_every

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._every(self._judge_every, self.judge_once))
            if self._url is not None:
                group.create_task(self._every(self._push_every, self.push_once))

    @staticmethod
    async def _every(seconds: float, step: Callable[[], Any]) -> None:
        while True:
            await step()
            await asyncio.sleep(seconds)

    async def judge_once(self) -> None:
        """Open or resolve bank incidents on the matcher clock's sliding hour."""
        clock = await self._reads.matcher_clock()
        if clock is None:
            return
        stats = {
            due.bank_code: due for due in await self._reads.fell_due(clock - SLIDING_WINDOW, clock)
        }
        incidents = await self._alerts.open_incidents()
        now = self._clock()
        for bank in sorted(set(stats) | set(incidents)):
            due = stats.get(bank, BankDue(bank, 0, 0))
            decision = judge(due, bank in incidents)
            if decision == "open" and await self._alerts.add(incident_alert(due, clock, now)):
                # Merchants not yet told hear the likely cause with their alert.
                blamed = await self._alerts.blame_incident(bank, now)
                _log.warning(
                    "bank incident opened",
                    extra={
                        "bank_code": bank,
                        "overdue": due.overdue,
                        "fell_due": due.fell_due,
                        "alerts_blamed": blamed,
                    },
                )
            elif decision == "resolve":
                text = f"{due.overdue} of {due.fell_due} payments due in the last hour are overdue"
                await self._alerts.resolve(
                    incidents[bank], note(now, SYSTEM, "resolved", text), now
                )
                _log.info("bank incident resolved", extra={"bank_code": bank})

    async def push_once(self) -> None:
        """Push what Alertmanager should hear now; on failure, try again next round."""
        assert self._url is not None
        now = self._clock()
        rows = await self._alerts.to_push(now, REPUSH)
        if not rows:
            return
        in_maintenance = await self._reads.active_maintenance(now)
        payload, active, ended = [], [], []
        for row in rows:
            if row.status == "resolved":
                if row.pushed_at is not None:  # never paged: nothing to end
                    payload.append(alertmanager_alert(row, ends_at=row.updated_at))
                ended.append(row.alert_id)
            elif row.type == "bank.incident" and row.bank_code in in_maintenance:
                continue  # recorded, not paged, while the bank announced maintenance
            else:
                payload.append(alertmanager_alert(row, ends_at=None))
                active.append(row.alert_id)
        if payload:
            try:
                response = await self._client.post(self._url, json=payload, timeout=10.0)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                ALERTMANAGER_PUSHES.labels("error").inc()
                _log.warning("alertmanager push failed", extra={"error": str(exc)})
                return
            ALERTMANAGER_PUSHES.labels("ok").inc()
        await self._alerts.mark_pushed(active, ended, now)
