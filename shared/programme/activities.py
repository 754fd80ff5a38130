"""Activity points: a partner rewards a non-purchase action (sign-up, survey, check-in, ...).

The points and caps come from the partner's earn rules (``activities``). An award is an earn in
the ledger — a partner-funded lot with the issuance fee, reversible by its reference like any
earn — and counts toward the velocity limits. Caps count awards (a reversal gives no room back)
and are exact: awards are counted after the member is locked, and every award is written under
that lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import case, func, insert, select

from shared.db.database import Tx
from shared.errors import ActivityCapReached, InvalidPoints, UnknownActivity
from shared.ledger.events import Event
from shared.ledger.rules import issuance_lines
from shared.ledger.state import chunks
from shared.models import ActivityAward
from shared.rules.document import ACTIVITY_NAME

if TYPE_CHECKING:  # pragma: no cover
    from shared.ledger.posting import Posting

awards_t = ActivityAward.__table__


def validate(event: Event) -> None:
    if not event.activity or not ACTIVITY_NAME.fullmatch(event.activity):
        raise UnknownActivity("activity is required: a name from your earn rules (lowercase letters, digits, - _)")
    if event.points is not None:
        raise InvalidPoints("an activity's points come from your earn rules; points are not accepted")


def award_counts(tx: Tx, partner_id: str, member_ids: Iterable[str], day) -> dict[tuple[str, str], list[int]]:
    """(member, activity) -> [awards on ``day``, awards in all] for the partner's activities."""
    counts: dict[tuple[str, str], list[int]] = {}
    for chunk in chunks(member_ids):
        rows = tx.session.execute(
            select(awards_t.c.member_id, awards_t.c.activity, func.count(),
                   func.sum(case((awards_t.c.business_day == day, 1), else_=0)))
            .where(awards_t.c.partner_id == partner_id, awards_t.c.member_id.in_(chunk))
            .group_by(awards_t.c.member_id, awards_t.c.activity))
        for member, activity, total, today in rows:
            counts[(member, activity)] = [int(today or 0), int(total)]
    return counts


class Activities:
    """One unit of work's activity awards for one partner."""

    def __init__(self, posting: Posting, rules):
        self.posting = posting
        self.rules = rules  # the partner's RuleSet in force, or None
        self.rows: list[dict] = []
        # (member, activity) -> awards in all; day -> (member, activity) -> awards on that network day.
        # The unit's first activity reads both in one query (its day's counts with the totals); an
        # activity of a further day (a backdated one beside today's) reads that day's counts once, the same way.
        self._totals: dict[tuple[str, str], int] | None = None
        self._days: dict[object, dict[tuple[str, str], int]] = {}

    def post(self, event: Event, limits, day) -> dict:
        posting = self.posting
        posting._require_active()
        member = posting._member(event.member_id)
        activity = self.rules.activities.get(event.activity) if self.rules else None
        if activity is None:
            raise UnknownActivity(f"no activity {event.activity!r} in your earn rules in force",
                                  activity=event.activity)
        if self._totals is None or day not in self._days:
            # the events' ids are the keys read below: ``_member`` answers only the member locked under that
            # very id (a duplicate merged into another is never locked: its events answer unknown_member,
            # and its awards moved to the survivor with the merge)
            members = {e.member_id for e in posting.events if e.kind == "activity" and e.member_id}
            counts = award_counts(posting.tx, posting.partner_id, members, day)
            if self._totals is None:  # the totals as read first: this unit's awards are counted on top
                self._totals = {key: total for key, (_, total) in counts.items()}
            self._days[day] = {key: on_day for key, (on_day, _) in counts.items()}
        key = (member.id, event.activity)
        on_day, total = self._days[day].get(key, 0), self._totals.get(key, 0)
        for cap, used, what in ((activity.per_member_per_day, on_day, "per_member_per_day"),
                                (activity.per_member_total, total, "per_member_total")):
            if cap is not None and used >= cap:
                raise ActivityCapReached(
                    f"activity {event.activity!r} was already awarded {used} times to this member "
                    f"({what} cap {cap})", activity=event.activity, cap_name=what, cap=cap)
        points = activity.points
        posting._require_money_fits(points)  # as the earn: money that does not fit a ledger line is refused first
        terms = posting.terms
        float_cost = points * terms.point_value_micro if terms.billing == "prepaid" else 0
        if float_cost:  # a prepaid partner's activity points draw on its float like an earn
            posting.float_guard.ensure(float_cost, member_id=member.id, reference=event.reference)
        limits.check_earn(member.id, points, points)  # may refuse; nothing below does
        if float_cost:
            posting.float_guard.draw(float_cost, member_id=member.id, reference=event.reference)
        entry = posting.journal.entry("earn", points, partner_id=posting.partner_id, member_id=member.id,
                                      reference=event.reference, occurred_at=event.occurred_at or posting.now,
                                      request=event.request())
        lot = posting._new_lot(entry, member.id, posting.partner_id, terms.billing, terms.contract_id, points)
        posting.journal.transfer(entry, f"partner:{posting.partner_id}:issued", f"member:{member.id}", points)
        from shared.ledger.posting import Original, lot_json

        original = Original(entry["id"], "earn", member.id, posting.partner_id, points, lot_ids=[lot.id])
        for line in issuance_lines(lot, terms):
            line_id = posting.journal.line(entry, line)
            original.lines.append((line_id, line))
            original.reversed_lines[line_id] = [0, 0]
        posting.originals[event.reference] = original
        member.change(available=points)
        # an award is an earn: it qualifies (if it occurred in the window), and may upgrade
        posting.tiers.earned(member.id, points, entry["id"], entry["occurred_at"])
        self._days[day][key] = on_day + 1
        self._totals[key] = total + 1
        self.rows.append({"entry_id": entry["id"], "partner_id": posting.partner_id, "activity": event.activity,
                          "member_id": member.id, "business_day": day, "points": points})
        return posting._result(entry, member, activity=event.activity, lots=[lot_json(lot)])

    def flush(self) -> None:
        if self.rows:
            self.posting.tx.session.execute(insert(awards_t), self.rows)
