"""A partner's members in a period: who transacted, who is new, who came from elsewhere, how they buy."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import case, distinct, func, select

from shared.db.database import Tx
from shared.models import Entry, Member, MemberLink
from shared.reports.period import Period
from shared.reports.segments import tier_and_status_mix
from shared.reports.sql import TRANSACTION_KINDS, purchase_amount


def ratio(numerator: int, denominator: int, places: int = 4) -> str | None:
    """An exact quotient as a decimal string (half-even), identical in every format; None for 0/0."""
    if not denominator:
        return None
    return str((Decimal(numerator) / Decimal(denominator)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN))


def _in_period(period: Period):
    return (Entry.cycle_date >= period.first, Entry.cycle_date <= period.last)


def member_figures(tx: Tx, partner_id: str, period: Period) -> dict:
    starts, ends = period.starts_at(tx.settings), period.ends_at(tx.settings)
    here = (Entry.partner_id == partner_id, *_in_period(period))
    # one pass over the partner's transactions, grouped by member (a hash aggregate, no DISTINCT sorts)
    per_member = (select(Entry.member_id.label("member_id"),
                         func.sum(case((Entry.kind == "earn", 1), else_=0)).label("earns"))
                  .where(*here, Entry.kind.in_(TRANSACTION_KINDS)).group_by(Entry.member_id).subquery())
    active, from_elsewhere, earning, repeat = tx.session.execute(
        select(func.count(), func.count(case((Member.enrolled_by != partner_id, 1))),
               func.count(case((per_member.c.earns >= 1, 1))), func.count(case((per_member.c.earns >= 2, 1))))
        .select_from(per_member).join(Member, Member.id == per_member.c.member_id)).one()
    new = tx.session.execute(select(func.count()).select_from(Member).where(
        Member.enrolled_by == partner_id, Member.created_at >= starts, Member.created_at < ends)).scalar_one()
    linked, newly_linked = tx.session.execute(
        select(func.count(), func.count(case((MemberLink.linked_at >= starts, 1))))
        .where(MemberLink.partner_id == partner_id, MemberLink.linked_at < ends)).one()
    amount = purchase_amount(tx)
    earns, points, with_amount, amount_total = tx.session.execute(
        select(func.count(), func.coalesce(func.sum(Entry.points), 0), func.count(amount),
               func.coalesce(func.sum(amount), 0)).where(*here, Entry.kind == "earn")).one()
    return {
        "active": int(active), "new": int(new), "linked": int(linked), "newly_linked": int(newly_linked),
        "from_elsewhere": int(from_elsewhere), "earning": int(earning), "repeat_earning": int(repeat),
        "repeat_purchase_rate": ratio(int(repeat), int(earning)),
        "earns": int(earns), "earn_points": int(points), "points_per_earn": ratio(int(points), int(earns), 2),
        "earns_with_amount": int(with_amount), "purchase_amount_minor": int(amount_total),
        "average_purchase_amount_minor": ratio(int(amount_total), int(with_amount), 0),
        **_segments(tx, partner_id, period),
    }


def _segments(tx: Tx, partner_id: str, period: Period) -> dict:
    """Tier and status mix (shared/reports/segments.py): None until member tiers exist, never invented."""
    mix = tier_and_status_mix(tx, partner_id, period)
    return {"tier_mix": mix and mix.get("tiers"), "status_mix": mix and mix.get("statuses")}


def active_members(tx: Tx, period: Period) -> int:
    """Members with at least one earn, burn or capture anywhere in the network in the period."""
    return int(tx.session.execute(select(func.count(distinct(Entry.member_id))).where(
        *_in_period(period), Entry.kind.in_(TRANSACTION_KINDS))).scalar_one())


def active_by_partner(tx: Tx, period: Period) -> dict[str, int]:
    return {partner: int(n) for partner, n in tx.session.execute(
        select(Entry.partner_id, func.count(distinct(Entry.member_id)))
        .where(*_in_period(period), Entry.kind.in_(TRANSACTION_KINDS), Entry.partner_id.is_not(None))
        .group_by(Entry.partner_id))}


def earn_window(tx: Tx, partner_id: str, period: Period) -> dict:
    """Earns at the partner in a window of cycles: how many, their points, their purchase amounts."""
    amount = purchase_amount(tx)
    earns, points, amount_total = tx.session.execute(
        select(func.count(), func.coalesce(func.sum(Entry.points), 0), func.coalesce(func.sum(amount), 0))
        .where(Entry.partner_id == partner_id, Entry.kind == "earn", *_in_period(period))).one()
    return {"from": period.first.isoformat(), "to": period.last.isoformat(), "earns": int(earns),
            "points": int(points), "purchase_amount_minor": int(amount_total)}

