"""network_settings: the largest lag between an earn's occurred_at and its posting, from the ledger

Campaign reports read earns posted up to the largest occurred_at window the network ever posted under
(``occurred_at_window_hours_max``, shared/reports/campaigns.py); each process that may write keeps it
at start when its own ``POINTSNET_OCCURRED_AT_WINDOW_HOURS`` is larger. The windows of earns posted
before that record existed are not known; the ledger's own largest lag (``posted_at`` −
``occurred_at``, in whole hours, rounded up) stands for them. Reading it is one pass over the earns,
done here, once, at upgrade (a process's start must not scan the ledger: every API process would,
before it listens), and only where the record is not there yet.

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-06 07:20:00.000000
"""
import math
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

from shared.db.types import UTCDateTime

revision = "0039"
down_revision = "0038"
branch_labels = None
depends_on = None

LARGEST_WINDOW = "occurred_at_window_hours_max"
settings_t = sa.table("network_settings", sa.column("name", sa.String), sa.column("value", sa.String),
                      sa.column("set_at", UTCDateTime))


def upgrade() -> None:
    bind = op.get_bind()
    if bind.execute(sa.select(settings_t.c.value).where(settings_t.c.name == LARGEST_WINDOW)).first() is not None:
        return
    if bind.dialect.name == "postgresql":
        lag = "extract(epoch from posted_at - occurred_at)"
    else:
        lag = "(julianday(posted_at) - julianday(occurred_at)) * 86400.0"
    seconds = bind.execute(sa.text(
        f"SELECT max({lag}) FROM entries WHERE kind = 'earn' AND occurred_at IS NOT NULL")).scalar()
    if seconds is None:  # no earn made before it was posted: the processes record their own window
        return
    hours = max(0, math.ceil(float(seconds) / 3600))
    bind.execute(sa.insert(settings_t).values(name=LARGEST_WINDOW, value=str(hours),
                                              set_at=datetime.now(timezone.utc)))


def downgrade() -> None:
    pass  # the record stays: an earlier release neither reads nor minds it
