"""A payment's history as (at, code, args) instead of English sentences (issue 29).

The evidence PDF translated the sentences back with regular expressions, so rewording one broke
the Chinese timeline. Each entry is now `[at, code, args]`, worded in each language by
`settlewatch.common.catalogue.HISTORY`. The upgrade reads the sentences this project has
written (the patterns below are the last place they live); a sentence that fits none keeps its
text as its code, which the catalogue shows as it is. It runs one partition at a time, so no
statement holds every payment's row lock at once. The downgrade writes the English sentences
again.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# One entry, old → new; an entry already coded is kept.
_CODED = r"""
CREATE FUNCTION pg_temp.coded(e jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
SELECT CASE
    WHEN jsonb_array_length(e) = 3 THEN e
    WHEN t IN ('overdue', 'expired') THEN jsonb_build_array(at, t, '{}'::jsonb)
    WHEN t = 'due date moved by bank maintenance'
        THEN jsonb_build_array(at, 'moved_by_maintenance', '{}'::jsonb)
    WHEN t ~ '^\w+ received$' THEN jsonb_build_array(
        at, 'received', jsonb_build_object('kind', split_part(t, ' ', 1)))
    WHEN t LIKE 'cancelled by %' THEN jsonb_build_array(
        at, 'cancelled', jsonb_build_object('by', substr(t, length('cancelled by ') + 1)))
    WHEN calendar IS NOT NULL THEN jsonb_build_array(at, 'moved_by_calendar', jsonb_build_object(
        'due_at', calendar[1], 'calendar', calendar[2],
        'year', calendar[3]::int, 'version', calendar[4]::int))
    WHEN settlement IS NOT NULL THEN jsonb_build_array(at, 'settlement', jsonb_strip_nulls(
        jsonb_build_object('settlement_id', settlement[1], 'status', settlement[2],
                           'matched_by', settlement[3])))
    ELSE jsonb_build_array(at, t, '{}'::jsonb)
END
FROM (SELECT e -> 0 AS at, e ->> 1 AS t,
      regexp_match(e ->> 1,
          '^due date moved to (\S+): calendar (\S+) (\d+) loaded \(version (\d+)\)$') AS calendar,
      regexp_match(e ->> 1, '^settlement (\S+): (\w+)(?: \(matched by (.+)\))?$') AS settlement
) parts
$$
"""

# One entry, new → old, as the matcher of 0016 wrote it.
_WORDED = r"""
CREATE FUNCTION pg_temp.worded(e jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
SELECT jsonb_build_array(e -> 0, CASE e ->> 1
    WHEN 'received' THEN (e -> 2 ->> 'kind') || ' received'
    WHEN 'moved_by_maintenance' THEN 'due date moved by bank maintenance'
    WHEN 'cancelled' THEN 'cancelled by ' || (e -> 2 ->> 'by')
    WHEN 'moved_by_calendar' THEN format('due date moved to %s: calendar %s %s loaded (version %s)',
        e -> 2 ->> 'due_at', e -> 2 ->> 'calendar', e -> 2 ->> 'year', e -> 2 ->> 'version')
    WHEN 'settlement' THEN format('settlement %s: %s', e -> 2 ->> 'settlement_id',
        e -> 2 ->> 'status') || coalesce(' (matched by ' || (e -> 2 ->> 'matched_by') || ')', '')
    ELSE e ->> 1
END)
$$
"""


def _rewrite(function: str, name: str) -> None:
    op.execute(function)
    bind = op.get_bind()
    partitions = bind.execute(sa.text("SELECT DISTINCT partition FROM matcher_payments")).all()
    for (partition,) in partitions:
        statement = sa.text(
            "UPDATE matcher_payments SET history = ("
            f"  SELECT coalesce(jsonb_agg(pg_temp.{name}(e) ORDER BY n), '[]'::jsonb)"
            "   FROM jsonb_array_elements(history) WITH ORDINALITY AS entries(e, n))"
            " WHERE partition = :partition"
        )
        bind.execute(statement, {"partition": partition})
    op.execute(f"DROP FUNCTION pg_temp.{name}(jsonb)")


def upgrade() -> None:
    _rewrite(_CODED, "coded")


def downgrade() -> None:
    _rewrite(_WORDED, "worded")
