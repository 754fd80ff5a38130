"""cycles: remove an open row before the network's first cycle that nothing refers to

A merge of members, an erasure or a buy-out on a network without a single ledger entry used to make
the open cycle of its day (``enter_open_cycle``) although it posted nothing; since then they enter no
cycle there (``shared/ledger/cycles.py``, ``enter_open_cycle_once_posted``). A row they left lies
before the network's first cycle (the business day of its first entry,
``settlement.runs.first_cycle``) once that entry comes: settlement never settles such a day, so the
row stays open for ever, no later settlement keeps its ledger position (``cycle_positions``: every
cycle up to it must be closed) and the reports list the day as unsettled.

This deletes a ``cycles`` row only when all of these hold:

* its status is ``open`` (a closed one was settled, or is being settled: it stays);
* it lies before the first cycle with entries, or the network has no entry at all (before its first
  entry no open row is needed: the first writer of a day makes it);
* no row refers to its day: no entry, obligation line, settlement run, kept ledger position, report
  roll-up, sealed cycle or partner termination (``final_cycle``). Every table with a foreign key to
  ``cycles`` also refuses the delete itself, so a row something refers to is never removed.

The days removed are logged. Nothing else changes; the downgrade does not put them back (they held
nothing).

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-06 06:00:00.000000
"""
import logging

from alembic import op
from sqlalchemy import text


revision = '0038'
down_revision = '0037'
branch_labels = None
depends_on = None

STRAY = """
    FROM cycles c
    WHERE c.status = 'open'
      AND (NOT EXISTS (SELECT 1 FROM entries)
           OR c.cycle_date < (SELECT MIN(e.cycle_date) FROM entries e))
      AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.cycle_date = c.cycle_date)
      AND NOT EXISTS (SELECT 1 FROM obligation_lines o WHERE o.cycle_date = c.cycle_date)
      AND NOT EXISTS (SELECT 1 FROM settlement_runs r WHERE r.cycle_date = c.cycle_date)
      AND NOT EXISTS (SELECT 1 FROM cycle_positions p WHERE p.cycle_date = c.cycle_date)
      AND NOT EXISTS (SELECT 1 FROM report_rollups u WHERE u.cycle_date = c.cycle_date)
      AND NOT EXISTS (SELECT 1 FROM sealed_cycles s WHERE s.cycle_date = c.cycle_date)
      AND NOT EXISTS (SELECT 1 FROM terminations t WHERE t.final_cycle = c.cycle_date)
"""


def upgrade() -> None:
    connection = op.get_bind()
    days = [row[0] for row in connection.execute(text(f"SELECT c.cycle_date {STRAY} ORDER BY c.cycle_date"))]
    if not days:
        return
    connection.execute(text(f"DELETE FROM cycles WHERE cycle_date IN (SELECT c.cycle_date {STRAY})"))
    logging.getLogger("alembic.runtime.migration").warning(
        "removed %d open cycles row(s) before the network's first cycle, referred to by nothing: %s",
        len(days), ", ".join(str(day)[:10] for day in days))


def downgrade() -> None:
    pass  # the rows held nothing; they are not put back
