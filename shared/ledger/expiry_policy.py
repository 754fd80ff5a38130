"""When a lot expires: the network's expiry policy, computed in the network's time zone.

``POINTSNET_EXPIRY_POLICY`` is one of:

* ``rolling:N`` — N months after the earn, to the second (``rolling:12`` is the default);
* ``end_of_month:N`` / ``end_of_quarter:N`` / ``end_of_year:N`` — at the end (local midnight
  that starts the next period) of the month, quarter or year in which the earn's N-month
  anniversary falls;
* ``days:N`` — N local days after the earn, at the same wall time (not N × 24 hours: across a
  daylight-saving change the last usable day stays N days after the earn's);
* ``never`` — expiry switched off (some jurisdictions forbid it): lots carry a far-future date.

``rolling:N`` and ``days:N`` move the earn's local wall time, then read it as zoneinfo does (PEP 495).
A wall time the clocks skip is read with the offset before the change: the points expire when the old
clock would have shown it (01:30 that does not exist is 02:30 on the new clock), whenever the earn was
made. A wall time the clocks repeat is the first of the two, unless the earn was made in the second pass
of a repeated hour (its ``fold`` 1): then the second. (Until 2026-12-07 such an earn's fold was kept for a
skipped wall time too, read with the offset after the change: in zones whose two changes share a wall
hour, as all of Europe's, its lot expired an hour earlier than a lot earned an hour before it.)
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from shared.db.types import FAR_FUTURE

POLICY = re.compile(r"^(never|(rolling|end_of_month|end_of_quarter|end_of_year|days):([1-9][0-9]{0,3}))$")


def validate(policy: str) -> str:
    if not POLICY.match(policy):
        raise ValueError(f"expiry policy {policy!r}: use never, days:N, rolling:N, end_of_month:N, "
                         "end_of_quarter:N or end_of_year:N")
    return policy


def _add_months(local: datetime, months: int) -> datetime:
    month = local.month - 1 + months
    year, month = local.year + month // 12, month % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day)


def _read(wall: datetime, fold: int) -> datetime:
    """``wall`` (a local time with its zone) with the earn's ``fold`` where the clocks repeat it, and fold 0,
    the offset before the change, where they skip it (it does not survive a round trip through UTC)."""
    wall = wall.replace(fold=fold)
    skipped = wall.astimezone(timezone.utc).astimezone(wall.tzinfo).replace(tzinfo=None) != wall.replace(tzinfo=None)
    return wall.replace(fold=0) if fold and skipped else wall


def expires_at(earned_at: datetime, policy: str, zone: ZoneInfo) -> datetime:
    """The instant (UTC) a lot earned at ``earned_at`` expires under ``policy``."""
    match = POLICY.match(policy)
    if match is None:
        raise ValueError(f"unknown expiry policy {policy!r}")
    if match.group(1) == "never":
        return FAR_FUTURE
    kind, n = match.group(2), int(match.group(3))
    local = earned_at.astimezone(zone)
    if kind == "days":  # wall-clock arithmetic (adding a timedelta resets fold: the earn's is given back)
        return _read(local + timedelta(days=n), local.fold).astimezone(timezone.utc)
    anniversary = _add_months(local, n)
    if kind == "rolling":
        return _read(anniversary, local.fold).astimezone(timezone.utc)
    if kind == "end_of_month":
        first_next = _add_months(anniversary.replace(day=1), 1)
    elif kind == "end_of_quarter":
        quarter_start_month = (anniversary.month - 1) // 3 * 3 + 1
        first_next = _add_months(anniversary.replace(month=quarter_start_month, day=1), 3)
    else:
        first_next = anniversary.replace(year=anniversary.year + 1, month=1, day=1)
    boundary = datetime.combine(first_next.date(), time(0)).replace(tzinfo=zone)
    return boundary.astimezone(timezone.utc)
