"""The core's timer in SQL: the deadline fast path.

At a tick the core decides the payments in its working set; every other due payment is decided
in the database, one statement per partition and round: it marks the due payments' states (a
narrow row with few indexes: schema.matcher) as the core's `_fire_due` would (pending → overdue
at `due_at`; overdue or failed → expired at `due_at + EXPIRY`) and writes their findings to the
outbox (`UPDATE … RETURNING` feeding `INSERT … SELECT`), so a million payments falling due at
once never pass through Python one by one. The statements are generated from the core's rules
(the status sets, EXPIRY, the finding's evidence) and tested against the core on the same
payments (tests/matcher/integration/test_timer_sql.py), which a change of either must keep
passing.

Every statement takes: $1 partition, $2 clock, $3 the clock as the payment history writes it,
$4 the clock as a finding writes it, $5 the round's size. It returns one row per new finding
(seq, key, merchant_id, body as text) and, on every row, how many payments it fired; a round
that fired nothing returns one row of nulls but that count.
"""

from __future__ import annotations

from settlewatch.matcher.core.matcher import EXPIRY
from settlewatch.matcher.core.model import AWAITING_DEADLINE, AWAITING_EXPIRY, Status

__all__ = ["FIRE_EXPIRED", "FIRE_OVERDUE", "FIRE_PLAN", "NEXT_DUE", "status_in"]


def status_in(statuses: frozenset[Status]) -> str:
    """An SQL condition on status, with literals, so that the planner matches it to the partial
    indexes of the same statuses (a bound array parameter would not)."""
    return f"status IN ({', '.join(repr(s) for s in sorted(statuses))})"


# Seconds, not days: an interval of days is calendar days in the session's time zone, an hour
# off the core's timedelta across a daylight-saving change.
_EXPIRY = f"interval '{int(EXPIRY.total_seconds())} seconds'"
_AT_DEADLINE = f"{status_in(AWAITING_DEADLINE)} AND due_at <= $2::timestamptz"
_AT_EXPIRY = f"{status_in(AWAITING_EXPIRY)} AND due_at <= $2::timestamptz - {_EXPIRY}"

# When the timer next acts on a stored payment of partition $1 but those in $2 (the working
# set): the earliest fires_at, as matcher.fires_at computes it.
NEXT_DUE = f"""
SELECT least(
    (SELECT min(due_at) FROM matcher_payment_states
     WHERE partition = $1 AND {status_in(AWAITING_DEADLINE)} AND txn_id <> ALL($2::text[])),
    (SELECT min(due_at) FROM matcher_payment_states
     WHERE partition = $1 AND {status_in(AWAITING_EXPIRY)} AND txn_id <> ALL($2::text[]))
    + {_EXPIRY})
"""

# The bank's last word (Payment.latest_settlement): the latest confirmation, then the id. A
# payment awaiting its deadline has none (any settlement makes it settled or failed).
_LATEST = """LEFT JOIN LATERAL (SELECT e.value AS fact FROM jsonb_each(s.settlements) e
              ORDER BY (e.value ->> 'occurred_at')::timestamptz DESC,
                       e.value ->> 'settlement_id' COLLATE "C" DESC
              LIMIT 1) latest ON true"""
_NO_SETTLEMENT = "CROSS JOIN (SELECT NULL::jsonb AS fact) latest"
# Matcher._note's evidence: the txn_id, the payment's evidence, then the payment's facts (f)
# and state (s) (times in the offset they were given in: matcher_isoformat, migration 0014).
# The evidence's keys (matcher.EVIDENCE_FIELDS) are none of the others, so one merge builds it:
# each jsonb merge costs µs a finding.
_EVIDENCE = """f.evidence || jsonb_build_object(
        'txn_id', f.txn_id,
        'occurred_at', matcher_isoformat(f.occurred_at, f.occurred_offset),
        'amount_minor', abs(f.amount_minor),
        'currency', f.currency,
        'bank_code', f.bank_code,
        'settlement_cycle', f.cycle,
        'due_at', matcher_isoformat(s.due_at, s.due_offset),
        'deadline_basis', s.deadline_basis,
        'settlement_id', latest.fact -> 'settlement_id',
        'failure_reason', latest.fact -> 'failure_reason')"""
# matcher._overdue: a deadline moved by a calendar makes the next overdue a new finding.
_OVERDUE_SUBJECT = """CASE WHEN s.deadline_moves > 0
    THEN f.txn_id || ':' || (s.deadline_moves + 1) ELSE f.txn_id END"""


def _fire(rule: str, becomes: Status, also: str, finding: str, subject: str, latest: str) -> str:
    return f"""
WITH due AS (
    SELECT txn_id, business_date FROM matcher_payment_states
    WHERE partition = $1 AND {rule}
    ORDER BY due_at LIMIT $5
), fired AS (
    UPDATE matcher_payment_states p
    SET status = '{becomes}', reported = '{becomes}', {also} updated_at = now(),
        -- the history entry (at, code, args): the status is its code (common.catalogue)
        history = p.history || jsonb_build_array(
            jsonb_build_array($3::text, '{becomes}', '{{}}'::jsonb))
    FROM due WHERE p.txn_id = due.txn_id AND p.business_date = due.business_date
    RETURNING p.txn_id, p.business_date, p.due_at, p.due_offset, p.deadline_basis,
        p.deadline_moves, p.settlements
), found AS (
    SELECT f.merchant_id, f.txn_id, '{finding}:' || {subject} AS id, {_EVIDENCE} AS evidence
    FROM fired s
    JOIN matcher_payments f ON f.txn_id = s.txn_id AND f.business_date = s.business_date
    {latest}
), new AS (
    INSERT INTO matcher_outbox (key, merchant_id, partition, body)
    SELECT id || '#open', merchant_id, $1, jsonb_build_object(
        'id', id, 'type', '{finding}', 'state', 'open', 'at', $4::text,
        'merchant_id', merchant_id, 'txn_id', txn_id, 'evidence', evidence)
    FROM found
    ON CONFLICT (key) DO NOTHING
    RETURNING seq, key, merchant_id, body
)
SELECT counted.fired, new.seq, new.key, new.merchant_id, new.body::text AS body
FROM (SELECT count(*) AS fired FROM fired) counted LEFT JOIN new ON true
"""


# For the transaction of a round. A round's 10 000 payments are found by the deadline index and
# then each by its key; priced as random reads (random_page_cost 4), those probes look dearer to
# the planner than hashing the whole day's table, so it scanned every row of the day once per
# round (1 M due: 137 s, 200 000: 12 s). The rows are in the cache: the probes are what it costs.
# The round's findings are held in memory, not spilled to disk.
FIRE_PLAN = (
    "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL work_mem = '32MB'"
)

FIRE_OVERDUE = _fire(
    _AT_DEADLINE,
    "overdue",
    "overdue_fired = true,",
    "settlement.overdue",
    _OVERDUE_SUBJECT,
    _NO_SETTLEMENT,
)
FIRE_EXPIRED = _fire(_AT_EXPIRY, "expired", "", "settlement.expired", "f.txn_id", _LATEST)
