"""The posting engine's programme hooks: one object per unit, so posting.py only calls in at a few points.

``Posting`` calls ``members_to_lock`` before it locks members, ``referral_bonus`` among an earn's
(and its quote's) checks, ``check_earn`` / ``check_spend`` right before it writes an earn or a
burn/hold (after every other check), ``after_earn`` once an earn is written, ``activity`` for
activity events and ``flush`` after the journal is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.lazy import lazy
from shared.ledger.events import Event
from shared.programme.activities import Activities
from shared.programme.days import network_day
from shared.programme.limits import DailyLimits, effective_limits
from shared.programme.referrals import Referrals

if TYPE_CHECKING:  # pragma: no cover
    from shared.ledger.posting import Posting


class Programme:
    def __init__(self, posting: Posting):
        self.posting = posting
        self._released: list[tuple[str, object, int]] = []  # holds resolved before the limits were read

    @lazy
    def rules(self):
        """(partner rules, network rules) in force at posted_at; either may be None."""
        partner, network = self.posting.rules_in_force
        return (partner[1] if partner else None, network[1] if network else None)

    @lazy
    def limits(self) -> DailyLimits:
        partner, network = self.rules
        members = {e.member_id for e in self.posting.events if e.member_id}
        since = [version[2] for version in self.posting.rules_in_force if version is not None]
        limits = DailyLimits(self.posting.tx, self.posting.partner_id,
                             effective_limits(partner.limits if partner else None,
                                              network.limits if network else None), members,
                             rules_since=max(since) if since else None)
        for released in self._released:
            limits.hold_resolved(*released)
        return limits

    @lazy
    def referrals(self) -> Referrals:
        partner, network = self.rules
        programme = (partner.referral if partner else None) or (network.referral if network else None)
        return Referrals(self.posting, programme)

    @lazy
    def activities(self) -> Activities:
        return Activities(self.posting, self.rules[0])

    # -- hooks ---------------------------------------------------------------------------
    def members_to_lock(self, events: list[Event], linked: set[str]) -> set[str]:
        earners = {e.member_id for e in events if e.kind == "earn" and e.member_id in linked}
        return self.referrals.referrers_to_lock(earners) if earners else set()

    def hold_resolved(self, member_id: str, created_at, released: int) -> None:
        """A hold captured or voided in this unit: the points it releases no longer count toward its
        member's spend limit (``DailyLimits.hold_resolved``). Kept until the limits are read, if they are:
        a unit that only resolves holds reads no rules."""
        if "limits" in self.__dict__:
            self.limits.hold_resolved(member_id, created_at, released)
        elif released:
            self._released.append((member_id, created_at, released))

    def check_earn(self, member_id: str, points: int, partner_points: int) -> None:
        self.limits.check_earn(member_id, points, partner_points)

    def referral_bonus(self, event: Event, member_id: str) -> tuple[int, str] | None:
        """(points, funded_by) of the referral bonus this earn would pay its member's referrer, or None:
        read only, for the earn's and the quote's checks (``after_earn`` posts it)."""
        return self.referrals.bonus_due(event, member_id)

    def check_spend(self, member_id: str, points: int) -> None:
        self.limits.check_spend(member_id, points)

    def after_earn(self, event: Event, entry: dict, member, result: dict) -> None:
        self.referrals.after_earn(event, entry, member, result)

    def after_earn_reversed(self, original_entry_id: str, member_id: str, points: int) -> None:
        self.referrals.after_earn_reversed(original_entry_id, member_id, points)

    def activity(self, event: Event) -> dict:
        """The award counts toward (and is kept under) the network day the activity occurred: the
        partner's ``occurred_at`` drives earn rules (docs/earn-rules.md), so a check-in at 23:50 that
        reaches the network after midnight is that evening's. A unit may hold activities of several
        days (``Network.post``): ``Activities`` counts each award against its own day's cap."""
        day = network_day(event.occurred_at or self.posting.now, self.posting.tx.settings.zone)
        return self.activities.post(event, self.limits, day)

    def flush_counters(self) -> None:
        """The partner's issuance counter, before the journal's rows: a capped unit locked it when it
        counted (before the journal's kept totals), so every unit takes the two in that order."""
        if "limits" in self.__dict__:
            self.__dict__["limits"].flush()

    def flush(self) -> None:
        for part in ("referrals", "activities"):
            if part in self.__dict__:  # only what this unit used
                self.__dict__[part].flush()
