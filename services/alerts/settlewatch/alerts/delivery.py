"""Merchant webhooks (SPEC §7): group waiting alerts into deliveries, send the deliveries due,
log every attempt, and move each delivery on by the retry policy; once a period, a reminder
digest per merchant of its alerts still open (SPEC §12).

One round (`run_once`) at time `now` of the injected clock: close the groups whose wait is
over, make the period's digests if not made yet, claim the deliveries due (leased, so a crash
mid-attempt means one more attempt with the same webhook-id after the lease, never a second
delivery of the alerts), send them concurrently and record the results in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx

from settlewatch.alerts.core.grouping import ready_groups
from settlewatch.alerts.core.reminders import digests, period_start
from settlewatch.alerts.core.retry import ATTEMPT_TIMEOUT, Outcome, next_step
from settlewatch.alerts.core.signing import headers
from settlewatch.alerts.metrics import (
    ATTEMPT_SECONDS,
    DELIVERIES,
    DELIVERY_LATENCY,
    REMINDERS,
    RETRIES,
)
from settlewatch.alerts.repository.deliveries import Deliveries
from settlewatch.alerts.repository.rows import Attempt, Job
from settlewatch.alerts.views import digest_body, webhook_body
from settlewatch.common.webhook_guard import (
    Blocked,
    Network,
    Resolver,
    checked_addresses,
    system_resolver,
)

__all__ = ["LANES", "LEASE", "Deliverer"]

_log = logging.getLogger(__name__)
# Longer than an attempt can take, so a live attempt is never duplicated by another instance.
LEASE = ATTEMPT_TIMEOUT + timedelta(seconds=15)
# Attempts in flight at once, each on a client of its own: one httpx client shared by many
# concurrent requests spends more time managing its pool than sending (measured: 64 requests
# through one client ≈ 250/s, through 64 clients ≈ 730/s on the bench machine).
LANES = 64
USER_AGENT = "settlewatch-webhooks/1"


class Deliverer:
    def __init__(
        self,
        store: Deliveries,
        *,
        group_wait: timedelta,
        clock: Callable[[], datetime],
        interval: float = 0.2,
        lanes: int = LANES,
        remind_every: timedelta | None = None,
        resolver: Resolver = system_resolver,
        allowed: Sequence[Network] = (),
    ) -> None:
        self._store = store
        self._resolver, self._allowed = resolver, allowed
        self._wait = group_wait
        self._clock = clock
        self._remind_every = remind_every
        self._reminded: datetime | None = None  # the last period this instance made digests for
        self._interval = interval
        # Merchant endpoints are the merchants' business: no redirects, no proxies from the env.
        self._lanes: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        for _ in range(lanes):
            self._lanes.put_nowait(httpx.AsyncClient(follow_redirects=False, trust_env=False))

    async def __aenter__(self) -> Deliverer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        while not self._lanes.empty():
            await self._lanes.get_nowait().aclose()

    async def run(self) -> None:
        while True:
            busy = await self.run_once()
            if not busy:
                await asyncio.sleep(self._interval)

    async def run_once(self) -> bool:
        """One round; True when it found work (the next round comes at once)."""
        now = self._clock()
        groups = ready_groups(await self._store.waiting(now - self._wait), now, self._wait)
        created = await self._store.create(groups, now, webhook_body) if groups else 0
        created += await self._remind(now)
        jobs = await self._store.claim(now, LEASE)
        if jobs:
            attempts = await asyncio.gather(*(self._attempt(job) for job in jobs))
            await self._store.record(attempts, self._clock())
            for attempt in attempts:
                _observe(attempt, self._clock())
        return bool(created or jobs)

    async def _remind(self, now: datetime) -> int:
        """Once a period: the digests of open overdue and failed alerts (SPEC §12 reminders)."""
        every = self._remind_every
        if every is None:
            return 0
        period = period_start(now, every)
        if period == self._reminded:
            return 0
        due = digests(await self._store.to_remind(period - every), now, every)
        created = await self._store.create_digests(due, now, digest_body) if due else 0
        self._reminded = period
        REMINDERS.inc(created)
        return created

    async def _attempt(self, job: Job) -> Attempt:
        if job.url is None:
            return Attempt(job, Outcome("failed"), made=False, error="the merchant has no webhook")
        if not job.secrets:
            error = "no webhook secret this service can open: check SETTLEWATCH_SECRET_KEY"
            return Attempt(job, Outcome("failed"), made=False, error=error)
        if job.disabled:
            return Attempt(
                job,
                Outcome("disabled"),
                made=False,
                error="the endpoint is disabled (it answered 410 Gone); retry to enable it",
            )
        client = await self._lanes.get()
        try:
            sent_at = self._clock()  # once a lane is free: the signature's timestamp is now
            answer = await self._checked_post(client, job, job.url, sent_at)
        finally:
            self._lanes.put_nowait(client)
        ATTEMPT_SECONDS.observe(answer.latency)
        outcome = next_step(job.attempt, answer.status, self._clock(), answer.retry_after)
        _log.info(
            "webhook attempt",
            extra={
                "delivery_id": job.delivery_id,
                "merchant_id": job.merchant_id,
                "attempt": job.attempt,
                "status_code": answer.status,
                "latency_ms": round(answer.latency * 1000, 1),
                "error": answer.error,
                "outcome": outcome.status,
                "next_attempt_at": outcome.next_attempt_at.isoformat()
                if outcome.next_attempt_at
                else None,
            },
        )
        return Attempt(
            job,
            outcome,
            made=True,
            at=sent_at,
            status_code=answer.status,
            latency_ms=answer.latency * 1000,
            error=answer.error,
        )

    async def _checked_post(
        self, client: httpx.AsyncClient, job: Job, url: str, sent_at: datetime
    ) -> _Answer:
        """Resolve the host, check every address (SPEC §14), and post to the first one, with
        the URL's host as Host and TLS name: the address connected to is the one checked."""
        started = time.perf_counter()
        try:
            addresses = await checked_addresses(url, self._resolver, self._allowed)
        except Blocked as exc:
            return _Answer(None, None, f"not sent: {exc}", time.perf_counter() - started)
        if not addresses:
            host = urlsplit(url).hostname
            return _Answer(None, None, f"not sent: {host} does not resolve", 0.0)
        return await _post(client, job, url, addresses[0], sent_at)


@dataclass(frozen=True)
class _Answer:
    status: int | None  # None: no answer
    retry_after: str | None
    error: str | None
    latency: float  # seconds


async def _post(
    client: httpx.AsyncClient, job: Job, url: str, address: str, sent_at: datetime
) -> _Answer:
    """One signed POST of the delivery's body to `address`, for `url`; what the endpoint
    answered, or why not."""
    started = time.perf_counter()
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    target = urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))
    named = parts.netloc.rpartition("@")[2]  # the Host the endpoint expects
    status: int | None = None
    retry_after: str | None = None
    error: str | None = None
    try:
        response = await client.post(
            target,
            content=job.body,
            headers=headers(job.secrets, job.delivery_id, int(sent_at.timestamp()), job.body)
            | {"user-agent": USER_AGENT, "host": named},
            timeout=ATTEMPT_TIMEOUT.total_seconds(),
            extensions={"sni_hostname": parts.hostname or ""},
        )
        status, retry_after = response.status_code, response.headers.get("retry-after")
        if not response.is_success:
            error = f"HTTP {status}"
    except httpx.TimeoutException:
        error = f"no answer within {ATTEMPT_TIMEOUT.total_seconds():.0f} s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    return _Answer(status, retry_after, error, time.perf_counter() - started)


def _observe(attempt: Attempt, now: datetime) -> None:
    status = attempt.outcome.status
    if status == "retry":
        RETRIES.inc()
        return
    DELIVERIES.labels(status).inc()
    if status == "delivered":
        DELIVERY_LATENCY.observe((now - attempt.job.first_alert_at).total_seconds())
