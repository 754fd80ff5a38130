"""Dates and instants typed into the dashboard's forms and links, read strictly.

A date is exactly ``YYYY-MM-DD`` (shared.clock.parse_date, as the ledger filter, the
reports and the command line read them): ``20261201``, ``2026-W49-2`` or ``2026-12-1`` are refused
rather than read as some day. An instant is RFC 3339 with its offset
(shared.clock.parse_rfc3339, as the command line reads them): ``2026-12-01T00:00:00+08:00`` or
``…Z``, seconds included, fractions allowed.
"""

from __future__ import annotations

from datetime import date, datetime

from fastapi import Path

from shared.clock import parse_rfc3339
from shared.errors import ValidationFailed
from shared.clock import parse_date


def form_date(text: str | None, name: str) -> date | None:
    """A date field: empty is None; anything but YYYY-MM-DD is refused (422) naming the field."""
    if not text:
        return None
    try:
        return parse_date(text)
    except ValueError:
        raise ValidationFailed(f"{name} is a date YYYY-MM-DD (e.g. 2026-12-01), not {text!r}") from None


def form_instant(text: str | None, name: str) -> datetime | None:
    """An instant field: empty is None; anything but an RFC 3339 instant with its offset is refused."""
    if not text:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        raise ValidationFailed(f"{name} is an RFC 3339 instant with its offset (e.g. 2026-12-01T00:00:00+08:00), "
                               f"not {text!r}") from None


def cycle_in_path(cycle: str = Path(...)) -> date:
    """A cycle date in a page's address (/settlement/2026-11-20/…), read as strictly as a form's."""
    return form_date(cycle, "the cycle")
