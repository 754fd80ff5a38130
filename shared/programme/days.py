"""Network days: midnight to midnight in the network's time zone, as UTC instants."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo


def network_day(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def last_day(expires_at: datetime, zone: ZoneInfo) -> date:
    """The last local day points expiring at ``expires_at`` can be used: the day of the instant before
    it. A lot expiring at a local midnight (always under end-of-period expiry) was last usable the day
    before; one expiring within a day (rolling) is usable that day until then."""
    return network_day(expires_at - timedelta(microseconds=1), zone)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a network day in UTC (correct across DST changes: each midnight is resolved alone)."""
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(timezone.utc)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(timezone.utc)
    return start, end
