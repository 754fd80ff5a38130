"""A partner's members in a period: who transacted, who is new, who came from elsewhere, how they buy."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import and_, case, distinct, exists, func, literal, or_, select, union_all

from shared.db.database import Tx
from shared.members.consent import link_periods, linked_at
from shared.models import Entry, Member, ReportCycleEarns, ReportCycleMembers, ReportMonthMembers
from shared.reports.period import Period
from shared.reports.segments import tier_and_status_mix
from shared.reports.split import Split, split, within
from shared.reports.sql import CARRY, NETWORK, TRANSACTION_KINDS, const, exact_sum, exact_total, purchase_amount


def ratio(numerator: int, denominator: int, places: int = 4) -> str | None:
    """An exact quotient as a decimal string (half-even), identical in every format; None for 0/0."""
    if not denominator:
        return None
    return str((Decimal(numerator) / Decimal(denominator)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN))


def _earn_sums(tx: Tx, partner_id: str, parts: Split) -> tuple[int, int, int, int]:
    """Earns at the partner, their points, how many gave an amount and the amounts' sum."""
    totals = [0, 0, 0, 0]
    if parts.rolled:  # the amounts exactly: a cycle's may pass 2^63 (carry × 2^62 + minor), their sum too
        rollup = ReportCycleEarns
        amounts = exact_sum(tx, rollup.purchase_amount_minor)
        rolled = tx.session.execute(
            select(func.coalesce(func.sum(rollup.earns), 0), func.coalesce(func.sum(rollup.points), 0),
                   func.coalesce(func.sum(rollup.earns_with_amount), 0), *amounts,
                   *exact_sum(tx, rollup.purchase_amount_carry))
            .where(rollup.partner_id == partner_id, within(rollup.cycle_date, parts.rolled))).one()
        minor = exact_total(tx, rolled[3:3 + len(amounts)]) or 0
        carry = exact_total(tx, rolled[3 + len(amounts):]) or 0
        totals = [a + int(b) for a, b in zip(totals, (*rolled[:3], carry * CARRY + minor))]
    if parts.live:
        amount = purchase_amount(tx)
        live = tx.session.execute(
            select(func.count(), func.coalesce(func.sum(Entry.points), 0), func.count(amount), *exact_sum(tx, amount))
            .where(Entry.partner_id == partner_id, within(Entry.cycle_date, parts.live), Entry.kind == "earn")).one()
        totals = [a + int(b) for a, b in zip(totals, (*live[:3], exact_total(tx, live[3:]) or 0))]
    return totals[0], totals[1], totals[2], totals[3]


def _transactions(parts: Split, partner_id: str | None = None, *, with_partner: bool = False):
    """(member_id[, partner], transactions, earns) rows of the period, to be summed per member: the
    month roll-ups of its complete rolled-up months, the cycle roll-ups of its other rolled-up
    cycles, and the ledger's earns, burns and captures of the live ones."""
    selects, sources = [], []
    if parts.months:  # complete months: one row per member
        sources.append((ReportMonthMembers, ReportMonthMembers.month.in_(parts.months)))
    if parts.rolled_days:  # the other rolled-up cycles: one row per member and cycle
        sources.append((ReportCycleMembers, within(ReportCycleMembers.cycle_date, parts.rolled_days)))
    for rollup, when in sources:
        where = [when]
        if partner_id is not None:
            where.append(rollup.partner_id == partner_id)
        columns = [rollup.member_id.label("member_id")]
        if with_partner:
            columns.append(rollup.partner_id.label("partner_id"))
        selects.append(select(*columns, rollup.transactions.label("transactions"), rollup.earns.label("earns"))
                       .where(*where))
    if parts.live:
        where = [within(Entry.cycle_date, parts.live), Entry.kind.in_(TRANSACTION_KINDS),
                 Entry.member_id.is_not(None)]
        if partner_id is not None:
            where.append(Entry.partner_id == partner_id)
        columns = [Entry.member_id.label("member_id")]
        if with_partner:
            columns.append(func.coalesce(Entry.partner_id, const(NETWORK)).label("partner_id"))
        selects.append(select(*columns, literal(1).label("transactions"),
                              case((Entry.kind == "earn", 1), else_=0).label("earns")).where(*where))
    return (selects[0] if len(selects) == 1 else union_all(*selects)).subquery()


def _people(rows):
    """``rows`` (with a ``member_id``) joined to each member's person: the member a merged duplicate was
    merged into, else the member itself. A merge re-points the duplicates merged into the duplicate
    (shared/programme/merge.py), so ``merged_into`` is one hop. The join reads only the few merged
    duplicates (the partial index ix_members_merged_into), materialized once, whatever the period; the
    roll-ups keep the member ids as posted, so a merge made after a period was rolled up counts on
    reading."""
    merged = (select(Member.id.label("id"), Member.merged_into.label("merged_into"))
              .where(Member.merged_into.is_not(None)).cte("merged").prefix_with("MATERIALIZED"))
    person = func.coalesce(merged.c.merged_into, rows.c.member_id).label("person")
    return person, rows.outerjoin(merged, merged.c.id == rows.c.member_id)


def _new(tx: Tx, partner_id: str, starts, ends) -> int:
    """People whose first enrolment is in the period, counted by the partner that enrolled the survivor:
    a survivor enrolled by the partner whose earliest record (itself or a duplicate merged into it) was
    created in the period. Only the survivor's own rows are scanned, the duplicates found by their index."""
    duplicate = Member.__table__.alias("duplicate")
    merged_in_period = select(duplicate.c.merged_into).where(
        duplicate.c.merged_into.is_not(None), duplicate.c.created_at >= starts, duplicate.c.created_at < ends)
    merged_before = exists().where(duplicate.c.merged_into == Member.id, duplicate.c.created_at < starts)
    return int(tx.session.execute(select(func.count()).select_from(Member).where(
        Member.enrolled_by == partner_id, Member.merged_into.is_(None), Member.created_at >= starts,
        or_(Member.created_at < ends, Member.id.in_(merged_in_period)), ~merged_before)).scalar_one())


def _linked(partner_id: str, starts, ends):
    """People linked to the partner at ``ends``, and people newly linked in [starts, ends): whose link
    began then while no other link of the same person was there (the link of a merged duplicate or
    one withdrawn since; one window over the person's links by their start, no self-join)."""
    links = link_periods(partner_id)
    linker, joined_links = _people(links)
    # how long the person's earlier links reach (still there: past the period's end)
    until = func.coalesce(links.c.unlinked_at, literal(ends, links.c.unlinked_at.type))
    reach = func.max(until).over(partition_by=linker.element, order_by=links.c.linked_at, rows=(None, -1))
    rows = (select(linker, links.c.linked_at, links.c.unlinked_at, reach.label("earlier_until"))
            .select_from(joined_links).where(links.c.linked_at < ends).subquery("person_links"))
    new = and_(rows.c.linked_at >= starts,
               or_(rows.c.earlier_until.is_(None), rows.c.earlier_until < rows.c.linked_at))
    return select(func.count(distinct(case((linked_at(rows, ends), rows.c.person)))),
                  func.count(distinct(case((new, rows.c.person)))))


def member_figures(tx: Tx, partner_id: str, period: Period, *, rollup: bool = True) -> dict:
    starts, ends = period.starts_at(tx.settings), period.ends_at(tx.settings)
    parts = split(tx, period, rollup)
    # the partner's transactions grouped by member (a hash aggregate, no DISTINCT sorts), then by person
    rows = _transactions(parts, partner_id)
    per_member = (select(rows.c.member_id.label("member_id"), func.sum(rows.c.earns).label("earns"))
                  .group_by(rows.c.member_id).subquery())
    person, joined = _people(per_member)
    per_person = (select(person, func.sum(per_member.c.earns).label("earns")).select_from(joined)
                  .group_by(person).subquery())
    # the person's enrolling partner is the survivor's
    active, from_elsewhere, earning, repeat = tx.session.execute(
        select(func.count(), func.count(case((Member.enrolled_by != partner_id, 1))),
               func.count(case((per_person.c.earns >= 1, 1))), func.count(case((per_person.c.earns >= 2, 1))))
        .select_from(per_person).join(Member, Member.id == per_person.c.person)).one()
    new = _new(tx, partner_id, starts, ends)
    # from every link the partner has had, those withdrawn since too (``member_unlinks``): a withdrawal
    # changes no figure of a period before it. People, not link periods: a person may have several (a
    # link withdrawn, then a duplicate's link moved onto it by a merge) or one of a merged duplicate.
    linked, newly_linked = tx.session.execute(_linked(partner_id, starts, ends)).one()
    earns, points, with_amount, amount_total = _earn_sums(tx, partner_id, parts)
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


def active_members(tx: Tx, period: Period, *, rollup: bool = True) -> int:
    """People (a merged duplicate is its survivor) with at least one earn, burn or capture anywhere in the
    network in the period."""
    rows = _transactions(split(tx, period, rollup))
    person, joined = _people(rows)
    return int(tx.session.execute(select(func.count(distinct(person))).select_from(joined)).scalar_one())


def active_by_partner(tx: Tx, period: Period, *, rollup: bool = True) -> dict[str, int]:
    rows = _transactions(split(tx, period, rollup), with_partner=True)
    person, joined = _people(rows)
    return {partner: int(n) for partner, n in tx.session.execute(
        select(rows.c.partner_id, func.count(distinct(person))).select_from(joined)
        .where(rows.c.partner_id != const(NETWORK)).group_by(rows.c.partner_id))}


def earn_window(tx: Tx, partner_id: str, period: Period, *, rollup: bool = True) -> dict:
    """Earns at the partner in a window of cycles: how many, their points, their purchase amounts."""
    earns, points, _with_amount, amount_total = _earn_sums(tx, partner_id, split(tx, period, rollup))
    return {"from": period.first.isoformat(), "to": period.last.isoformat(), "earns": int(earns),
            "points": int(points), "purchase_amount_minor": int(amount_total)}
