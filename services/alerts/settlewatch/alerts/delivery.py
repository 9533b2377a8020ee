"""Merchant webhooks (SPEC §7): group waiting alerts into deliveries, send the deliveries due,
log every attempt, and move each delivery on by the retry policy; once a period, a reminder
digest per merchant of its alerts still open (SPEC §12).

A round (`dispatch`) at time `now` of the injected clock closes the groups whose wait is over,
makes the period's digests if not made yet, records the attempts that ended since the last
round (in one transaction), and claims as many deliveries due as there are free lanes, each
leased (a crash mid-attempt means one more attempt with the same webhook-id after the lease,
never a second delivery of the alerts). It starts their attempts and does not wait for them:
an endpoint that trickles its answer holds only its own lanes, never a round.

Isolation: at most PER_ENDPOINT attempts to one merchant's endpoint are in flight at once, out
of LANES in all, and each attempt has one wall-clock deadline (`timeout`, for the name lookup,
connect, send and answer together), so LANES / PER_ENDPOINT endpoints can hang at the same time
before a healthy one waits for a lane, and then no longer than `timeout`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx

from settlewatch.alerts.core.grouping import ready_groups
from settlewatch.alerts.core.reminders import digests, period_start
from settlewatch.alerts.core.retry import Outcome, next_step
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

__all__ = ["LANES", "MAX_ANSWER_BYTES", "PER_ENDPOINT", "Deliverer"]

_log = logging.getLogger(__name__)
# Attempts in flight at once, each on a client of its own: one httpx client shared by many
# concurrent requests spends more time managing its pool than sending (measured: 64 requests
# through one client ≈ 250/s, through 64 clients ≈ 730/s on the bench machine).
LANES = 64
# Attempts in flight at once to one merchant's endpoint: a slow or dead one holds no more.
PER_ENDPOINT = 2
# Of an answer's body, no more is read (only its status counts); the rest is dropped unread.
MAX_ANSWER_BYTES = 64 * 1024
# Deliveries claimed in one round at most (one statement).
CLAIM_MAX = 200
USER_AGENT = "settlewatch-webhooks/1"


class Deliverer:
    def __init__(
        self,
        store: Deliveries,
        *,
        group_wait: timedelta,
        clock: Callable[[], datetime],
        timeout: timedelta = timedelta(seconds=10),
        interval: float = 0.2,
        lanes: int = LANES,
        per_endpoint: int = PER_ENDPOINT,
        remind_every: timedelta | None = None,
        resolver: Resolver = system_resolver,
        allowed: Sequence[Network] = (),
    ) -> None:
        self._store = store
        self._resolver, self._allowed = resolver, allowed
        self._wait = group_wait
        self._clock = clock
        self._timeout = timeout
        # Longer than an attempt can take, so a live attempt is never duplicated by another
        # instance.
        self._lease = timeout + timedelta(seconds=15)
        self._remind_every = remind_every
        self._reminded: datetime | None = None  # the last period this instance made digests for
        self._interval = interval
        self._per_endpoint = per_endpoint
        self._in_flight: Counter[str] = Counter()  # merchant → attempts in flight
        self._running: set[asyncio.Task[Attempt]] = set()
        self._ended: list[Attempt] = []  # attempts over, not recorded yet
        self._wake = asyncio.Event()  # set when an attempt ends: its lane is free
        # Merchant endpoints are the merchants' business: no redirects, no proxies from the env.
        self._lanes: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        for _ in range(lanes):
            self._lanes.put_nowait(httpx.AsyncClient(follow_redirects=False, trust_env=False))
        self._lane_count = lanes

    async def __aenter__(self) -> Deliverer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the attempts in flight (their leases run out: they are made again) and close."""
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        while not self._lanes.empty():
            await self._lanes.get_nowait().aclose()

    async def run(self) -> None:
        while True:
            if not await self.dispatch():
                with suppress(TimeoutError):
                    async with asyncio.timeout(self._interval):
                        await self._wake.wait()
            self._wake.clear()

    async def run_once(self) -> bool:
        """One round and the end of its attempts, recorded; True when it found work."""
        busy = await self.dispatch()
        await asyncio.gather(*self._running)
        await self._record_ended()
        return busy

    async def dispatch(self) -> bool:
        """One round, not waiting for the attempts it starts; True when it found work (the
        next round comes at once)."""
        now = self._clock()
        groups = ready_groups(await self._store.waiting(now - self._wait), now, self._wait)
        created = await self._store.create(groups, now, webhook_body) if groups else 0
        created += await self._remind(now)
        recorded = await self._record_ended()
        free = min(CLAIM_MAX, self._lane_count - len(self._running))
        jobs = (
            await self._store.claim(
                now, self._lease, free, in_flight=self._in_flight, per_merchant=self._per_endpoint
            )
            if free > 0
            else []
        )
        for job in jobs:
            self._start(job)
        return bool(created or recorded or jobs)

    def _start(self, job: Job) -> None:
        self._in_flight[job.merchant_id] += 1
        task = asyncio.create_task(self._attempt(job), name=f"webhook {job.delivery_id}")
        self._running.add(task)

        def ended(task: asyncio.Task[Attempt]) -> None:
            self._running.discard(task)
            self._in_flight[job.merchant_id] -= 1
            if not self._in_flight[job.merchant_id]:
                del self._in_flight[job.merchant_id]
            self._wake.set()
            if task.cancelled():
                return
            if (error := task.exception()) is not None:  # a bug: the lease brings it back
                _log.error("webhook attempt failed", exc_info=error)
                return
            self._ended.append(task.result())

        task.add_done_callback(ended)

    async def _record_ended(self) -> int:
        ended, self._ended = self._ended, []
        if not ended:
            return 0
        now = self._clock()
        try:
            await self._store.record(ended, now)
        except BaseException:
            self._ended[:0] = ended  # recorded by a later round (the leases still hold)
            raise
        for attempt in ended:
            _observe(attempt, now)
        return len(ended)

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
        the URL's host as Host and TLS name: the address connected to is the one checked. All
        of it within the attempt's one deadline, however the endpoint trickles."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout.total_seconds()):
                try:
                    addresses = await checked_addresses(url, self._resolver, self._allowed)
                except Blocked as exc:
                    return _Answer(None, None, f"not sent: {exc}", time.perf_counter() - started)
                if not addresses:
                    host = urlsplit(url).hostname
                    return _Answer(None, None, f"not sent: {host} does not resolve", 0.0)
                status, retry_after = await _post(client, job, url, addresses[0], sent_at)
        except TimeoutError:
            late = f"no answer within {self._timeout.total_seconds():g} s"
            return _Answer(None, None, late, time.perf_counter() - started)
        except httpx.HTTPError as exc:
            failed = f"{type(exc).__name__}: {exc}"
            return _Answer(None, None, failed, time.perf_counter() - started)
        error = None if 200 <= status < 300 else f"HTTP {status}"
        return _Answer(status, retry_after, error, time.perf_counter() - started)


@dataclass(frozen=True)
class _Answer:
    status: int | None  # None: no answer
    retry_after: str | None
    error: str | None
    latency: float  # seconds


async def _post(
    client: httpx.AsyncClient, job: Job, url: str, address: str, sent_at: datetime
) -> tuple[int, str | None]:
    """One signed POST of the delivery's body to `address`, for `url`: the status and
    Retry-After the endpoint answered, once MAX_ANSWER_BYTES of its body are read or it ended."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    target = urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))
    named = parts.netloc.rpartition("@")[2]  # the Host the endpoint expects
    async with client.stream(
        "POST",
        target,
        content=job.body,
        headers=headers(job.secrets, job.delivery_id, int(sent_at.timestamp()), job.body)
        | {"user-agent": USER_AGENT, "host": named},
        timeout=None,  # the caller's deadline covers the whole attempt
        extensions={"sni_hostname": parts.hostname or ""},
    ) as response:
        read = 0
        async for chunk in response.aiter_raw():
            read += len(chunk)
            if read >= MAX_ANSWER_BYTES:
                break  # closing the response unread drops the connection
        return response.status_code, response.headers.get("retry-after")


def _observe(attempt: Attempt, now: datetime) -> None:
    status = attempt.outcome.status
    if status == "retry":
        RETRIES.inc()
        return
    DELIVERIES.labels(status).inc()
    if status == "delivered":
        DELIVERY_LATENCY.observe((now - attempt.job.first_alert_at).total_seconds())
