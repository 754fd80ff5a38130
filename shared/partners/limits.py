"""Finance limits: a prepaid partner's float, a postpaid partner's exposure.

Float. A prepaid partner pays ``point_value`` per point it issues (the design's
``prepaid_funding`` lines). With a float, it pays that money in advance: finance records
top-ups, and every prepaid issuance draws on them. Where a partner has a float overdraft
configured (0 or more), issuance that would take the float below ``-overdraft`` is refused
with ``float_exhausted`` and raised to operators. The float is exact::

    balance (micro-units) = sum(top-ups) * 10**6 - sum(the float's prepaid_funding line amounts)
                            + sum(settlements' rounding credits)

The float's lines are those of the cycles from the one open when it was enforced, and of cycles it
settled under an earlier enforcement; the lines of cycles settled by bank before it was enforced are
not (``partner_limits.float_opened_micro``).

Reversals of earns post negative ``prepaid_funding`` lines, so they give the float back. Every
``prepaid_funding`` line draws on it, a buy-out's too (a terminated partner funds its bought-out
points into the network's float as prepaid issuance does; docs/ledger.md, decisions 14 and 16).
The statements do not change: they still show every ``prepaid_funding`` line; for a partner
with a float, the part of it the float held is settled from the float, not by bank transfer
(``float_draws``, kept by settlement in ``settlements.from_float_minor``). What the float did not
hold (an overdraft; a buy-out larger than the float) is due by bank with the cycle's settlement,
and the float is credited with it (``credit_settled_by_bank``). A statement settles the cycle's
funding rounded once to minor units while the float was drawn the exact lines: settlement credits
the float with the difference (``settlements.float_rounding_micro``, signed), so a settled cycle
took from the float exactly what its statement says and, once every cycle is settled, the balance
is the top-ups less the statements' *from float*, in whole minor units.

Exposure. A postpaid partner's outstanding liability is the points still open in the lots it
funded, valued at its current ``point_value``. Above ``exposure_warn_ppm`` of its limit the
exposure job raises ``exposure_limit_near``; above the limit, ``exposure_limit_exceeded``.
Issuance is not refused for exposure: the limit is a finance alarm, not a gate.

Sums of ``prepaid_funding`` line amounts (micro-units, signed: reversals post negative lines) are
exact however large their running sum grows (``shared.reports.sql.exact_sum``): lines that each fit
64 bits, added in order, can pass 2^63 on the way to a total that fits, which SQLite's integer ``SUM``
refuses ("integer overflow"). Top-ups (positive minor units) and outstanding points (never negative)
are summed plainly: their running sum only grows, so it passes 2^63 only where the total itself does
not fit a ledger column.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import case, func, literal_column, select

from shared.alerts import clear_conditions, raise_alert, raise_condition, renew_conditions
from shared.db.database import Tx
from shared.errors import Conflict, InvalidAmount, ValidationFailed
from shared.ledger.cycles import cycle_date_for, cycle_end
from shared.db.types import new_id
from shared.models import Cycle, FloatTopup, Lot, ObligationLine, Partner, PartnerLimits, Settlement, SettlementRun
from shared.money import MAX_MICRO, MICRO, round_micro_to_minor
from shared.partners.contracts import contracts, require_partner, terms_in_force
from shared.partners.lifecycle import open_postpaid_lots, redeemable, wait_for_postings
from shared.reports.sql import exact_sum, exact_total


# written into the statement, not bound: a prepared statement's generic plan cannot use the partial
# index on prepaid funding lines (ix_obligation_lines_prepaid_funding) for a bound kind
PREPAID_FUNDING = literal_column("'prepaid_funding'")


# the references of the float's credits by settlements (``credit_settled_by_bank``): not a bank's
SETTLED_BY_BANK = "settlement:"

# The most minor units a top-up, a float overdraft or an exposure limit may be: its micro-units fit
# a ledger column (64-bit); more is refused as invalid_amount, not overflowed in the database.
MAX_MINOR = MAX_MICRO // MICRO


class FloatExhausted(Conflict):
    code, title = "float_exhausted", "The partner's prepaid float does not cover this issuance"

    @classmethod
    def needing(cls, needed_micro: int, headroom_micro: int, *, referral_bonus_micro: int = 0) -> FloatExhausted:
        """The refusal of an issuance needing ``needed_micro`` where the float has ``headroom_micro`` left;
        ``referral_bonus_micro`` of it is the partner-funded referral bonus the earn would pay."""
        if not referral_bonus_micro:
            return cls(f"this issuance needs {needed_micro} micro-units of float; {max(headroom_micro, 0)} remain "
                       f"(overdraft included): top up the float",
                       needed_micro=needed_micro, headroom_micro=headroom_micro)
        return cls(f"this issuance needs {needed_micro} micro-units of float, {referral_bonus_micro} of them for "
                   f"the referral bonus it would pay the member's referrer; {max(headroom_micro, 0)} remain "
                   f"(overdraft included): top up the float", needed_micro=needed_micro,
                   headroom_micro=headroom_micro, referral_bonus_micro=referral_bonus_micro)


class FloatTotalTooLarge(Conflict):
    code, title = "float_total_too_large", "The partner's prepaid float has given the most it can record"

    @classmethod
    def needing(cls, needed_micro: int, drawn_micro: int) -> FloatTotalTooLarge:
        return cls(f"this issuance needs {needed_micro} micro-units of float, but the float has given "
                   f"{drawn_micro} in all, and {MAX_MICRO} is the most its running total can record: the "
                   "network's operator must move the partner to postpaid billing (a new contract version)",
                   needed_micro=needed_micro, drawn_micro=drawn_micro)


def float_total_refusal(tx: Tx, partner_id: str, amount_micro: int) -> FloatTotalTooLarge | None:
    """What a quote answers for an issuance that would carry the float's kept total past MAX_MICRO (read
    without the lock, as ``FloatGuard.draw`` refuses the earn), or None."""
    row = _limits(tx, partner_id)
    kept = None if row is None or row.float_drawn_micro is None else int(row.float_drawn_micro)
    if kept is not None and amount_micro > 0 and kept + amount_micro > MAX_MICRO:
        return FloatTotalTooLarge.needing(amount_micro, kept)
    return None


class TopupConflict(Conflict):
    code, title = "topup_conflict", "This bank reference was already recorded with another amount"


class NotPrepaid(Conflict):
    code, title = "not_prepaid", "The partner is not prepaid: it has no float"


def _require_prepaid(tx: Tx, partner_id: str, what: str) -> None:
    """A float is a prepaid partner's: its contract in force, or a version scheduled, bills prepaid. Money
    recorded into a postpaid partner's float would settle nothing (its issuance draws on no float), and
    its settlements would stay due while the float showed a balance."""
    today = cycle_date_for(tx.now, tx.settings)
    if terms_in_force(tx, partner_id, today).billing == "prepaid":
        return
    scheduled = tx.session.execute(select(contracts.c.id).where(
        contracts.c.partner_id == partner_id, contracts.c.effective_from > today,
        contracts.c.billing == "prepaid").limit(1)).first()
    if scheduled is None:
        raise NotPrepaid(f"partner {partner_id} is postpaid: {what} is for a prepaid partner's float (a postpaid "
                         "partner settles what it issued by bank)")


def _limits(tx: Tx, partner_id: str, *, lock: bool = False) -> PartnerLimits | None:
    query = select(PartnerLimits).where(PartnerLimits.partner_id == partner_id)
    if lock and tx.is_postgres:
        query = query.with_for_update()
    return tx.session.execute(query).scalar_one_or_none()


def stop_keeping_a_float_total_it_would_overflow(tx: Tx, partner_id: str, adding_micro: int) -> None:
    """A buy-out (never refused) whose prepaid funding would carry the float's kept total past MAX_MICRO
    (its 64-bit column, which every prepaid_funding line of the partner adds to): the total is no longer
    kept (NULL), so nothing adds to it; every reader then sums the partner's lines exactly instead, as
    for a float never enforced (``_balance_micro``, ``float_draws``, ``verify``)."""
    if adding_micro <= 0:
        return
    row = _limits(tx, partner_id, lock=True)
    if row is not None and row.float_drawn_micro is not None and int(row.float_drawn_micro) + adding_micro > MAX_MICRO:
        row.float_drawn_micro = None
        tx.session.flush()


def set_limits(tx: Tx, partner_id: str, **changes: int | None) -> dict:
    """Set some of ``float_overdraft_minor``, ``exposure_limit_minor``, ``exposure_warn_ppm``."""
    require_partner(tx, partner_id)
    allowed = {"float_overdraft_minor", "exposure_limit_minor", "exposure_warn_ppm"}
    if set(changes) - allowed:
        raise ValidationFailed(f"unknown limits {sorted(set(changes) - allowed)}")
    for name, value in changes.items():
        if value is not None and value < 0:
            raise ValidationFailed(f"{name} must be 0 or more")
        if value is not None and name != "exposure_warn_ppm" and value > MAX_MINOR:
            raise InvalidAmount(f"{name} is at most {MAX_MINOR} minor units, not {value}")
    if changes.get("exposure_warn_ppm") is None:
        changes.pop("exposure_warn_ppm", None)
    elif changes["exposure_warn_ppm"] > 1_000_000:
        raise ValidationFailed("exposure_warn_ppm is at most 1000000 (100%)")
    if changes.get("float_overdraft_minor") is not None:
        _require_prepaid(tx, partner_id, "an overdraft")
        # before the row lock, which a posting takes after this: no posting in flight may draw
        # between the sum below and the trigger that keeps it from then on
        wait_for_postings(tx, partner_id)
    row = _limits(tx, partner_id, lock=True)
    if row is None:
        row = PartnerLimits(partner_id=partner_id, exposure_warn_ppm=800_000, updated_at=tx.now)
        tx.session.add(row)
    opening = row.float_overdraft_minor is None and changes.get("float_overdraft_minor") is not None
    for name, value in changes.items():
        setattr(row, name, value)
    if row.float_overdraft_minor is not None and row.float_drawn_micro is None:
        row.float_drawn_micro = _summed_drawn(tx, partner_id)
    if opening:  # enforced (again): the float answers the cycles from the one open now
        row.float_opened_cycle = cycle_date_for(tx.now, tx.settings)
        row.float_opened_micro = not_the_floats(tx, partner_id, row.float_opened_cycle)
    row.updated_at = tx.now
    tx.session.flush()
    return limits_json(row)


def limits_json(row: PartnerLimits | None) -> dict:
    if row is None:
        return {"float_overdraft_minor": None, "exposure_limit_minor": None, "exposure_warn_ppm": 800_000}
    return {"float_overdraft_minor": row.float_overdraft_minor, "exposure_limit_minor": row.exposure_limit_minor,
            "exposure_warn_ppm": row.exposure_warn_ppm}


def record_topup(tx: Tx, partner_id: str, amount_minor: int, bank_reference: str) -> dict:
    """Record money paid into a partner's float; recording the same bank reference again changes nothing."""
    require_partner(tx, partner_id)
    reference = bank_reference.strip()
    if not reference:
        raise ValidationFailed("a bank reference is required")
    if reference.lower().startswith(SETTLED_BY_BANK):
        raise ValidationFailed(f"bank references starting with {SETTLED_BY_BANK!r} are the network's own "
                               "(a settlement's credit to the float)")
    if amount_minor <= 0:
        raise ValidationFailed("a top-up is a positive amount in minor units")
    if amount_minor > MAX_MINOR:
        raise InvalidAmount(f"a top-up is at most {MAX_MINOR} minor units, not {amount_minor}")
    _require_prepaid(tx, partner_id, "a top-up")
    existing = tx.session.execute(select(FloatTopup).where(
        FloatTopup.partner_id == partner_id, FloatTopup.bank_reference == reference)).scalar_one_or_none()
    if existing is not None:
        if existing.amount_minor != amount_minor:
            raise TopupConflict(f"bank reference {reference!r} was recorded for {existing.amount_minor} minor units",
                                recorded_amount_minor=existing.amount_minor)
        return float_status(tx, partner_id) | {"topup_id": existing.id, "recorded": False}
    row = FloatTopup(id=new_id("top"), partner_id=partner_id, amount_minor=amount_minor, bank_reference=reference,
                     recorded_at=tx.now)
    tx.session.add(row)
    tx.session.flush()
    return float_status(tx, partner_id) | {"topup_id": row.id, "recorded": True}


def _summed_drawn(tx: Tx, partner_id: str) -> int:
    """The partner's prepaid_funding line amounts summed: every line it ever paid (slow for a big partner)."""
    return exact_total(tx, tx.session.execute(select(*exact_sum(tx, ObligationLine.amount_micro)).where(
        ObligationLine.payer == partner_id, ObligationLine.kind == PREPAID_FUNDING)).one()) or 0


def float_settled_cycles(tx: Tx, partner_id: str) -> set[date]:
    """The settled cycles whose settlement took the partner's funding from its float or credited the
    float (a part of it, its shortfall or its rounding): what a float settled, every other settled cycle
    with funding was settled by bank (a cycle whose lines add up to 0 is neither, and counts for nothing)."""
    shown = select(Settlement.cycle_date).where(
        Settlement.party == partner_id,
        (Settlement.from_float_minor != 0) | (Settlement.float_rounding_micro != 0))
    days = set(tx.session.execute(shown).scalars())
    for reference in tx.session.execute(select(FloatTopup.bank_reference).where(
            FloatTopup.partner_id == partner_id, FloatTopup.bank_reference.like(f"{SETTLED_BY_BANK}%"))).scalars():
        answers = _settlement_cycle(reference)
        if answers is not None:
            days.add(answers)
    return days


def not_the_floats(tx: Tx, partner_id: str, opened: date) -> int:
    """The prepaid_funding lines (micro-units) that are not a float enforced from cycle ``opened``'s: those
    of the cycles before it that no settlement took from the float (docs/ledger.md, decision 14)."""
    floats = float_settled_cycles(tx, partner_id)
    total = 0
    for day, *amount in tx.session.execute(
            select(ObligationLine.cycle_date, *exact_sum(tx, ObligationLine.amount_micro))
            .where(ObligationLine.payer == partner_id, ObligationLine.kind == PREPAID_FUNDING,
                   ObligationLine.cycle_date < opened).group_by(ObligationLine.cycle_date)).all():
        if day not in floats:
            total += exact_total(tx, amount) or 0
    return total


def kept_floats(tx: Tx) -> list[str]:
    """The partners whose float drawn is kept (``partner_limits.float_drawn_micro``), by id."""
    return list(tx.session.execute(select(PartnerLimits.partner_id).where(
        PartnerLimits.float_drawn_micro.is_not(None)).order_by(PartnerLimits.partner_id)).scalars())


def repair_float_drawn(tx: Tx, partner_id: str) -> tuple[int, int] | None:
    """Set the partner's kept float drawn to the sum of its prepaid_funding lines; (kept, summed)
    when they differed. The limits row is locked before the sum: a posting that has written lines
    has also added them to the row (PostgreSQL's trigger), so holds its lock until it commits, and
    the sum, a later statement, sees its lines; a posting that writes them later adds to the
    repaired row. (``set_limits`` must wait for the postings instead: before a float is kept, the
    trigger adds nothing and locks nothing. SQLite's writers run one at a time.)"""
    row = _limits(tx, partner_id, lock=True)
    if row is None or row.float_drawn_micro is None:
        return None
    summed = _summed_drawn(tx, partner_id)
    if row.float_drawn_micro == summed:
        return None
    kept, row.float_drawn_micro, row.updated_at = int(row.float_drawn_micro), summed, tx.now
    tx.session.flush()
    return kept, summed


def _balance_micro(tx: Tx, partner_id: str, row: PartnerLimits | None) -> tuple[int, int, int]:
    """(top-ups in minor units, drawn in micro-units, settlements' rounding credits in micro-units):
    drawn from the kept total of the partner's limits ``row`` when there is one, less the lines that are
    not the float's (those of cycles before it was enforced that it did not settle)."""
    # one statement (a prepaid earn's round trip): the top-ups, and the settlements' rounding credits, each
    # at most half a minor unit (ix_settlements_party_cycle)
    topups, rounding = tx.session.execute(select(
        select(func.coalesce(func.sum(FloatTopup.amount_minor), 0))
        .where(FloatTopup.partner_id == partner_id).scalar_subquery(),
        select(func.coalesce(func.sum(Settlement.float_rounding_micro), 0))
        .where(Settlement.party == partner_id).scalar_subquery())).one()
    kept = None if row is None else row.float_drawn_micro
    drawn = _summed_drawn(tx, partner_id) if kept is None else int(kept)
    return int(topups), drawn - (0 if row is None else int(row.float_opened_micro or 0)), int(rounding)


def float_status(tx: Tx, partner_id: str) -> dict:
    """The float's top-ups (``settled_by_bank_minor`` of them: settlements' credits for funding the float
    did not hold, due by bank instead), what it gave (its prepaid_funding lines, exact), what
    settlements credited it for rounding (``settled_rounding_micro``: the statements settle each
    cycle's funding rounded once), its balance and, where enforced, its headroom."""
    row = _limits(tx, partner_id)
    topups, drawn, rounding = _balance_micro(tx, partner_id, row)
    balance = topups * MICRO - drawn + rounding
    overdraft = limits_json(row)["float_overdraft_minor"]
    by_bank = tx.session.execute(select(func.coalesce(func.sum(FloatTopup.amount_minor), 0)).where(
        FloatTopup.partner_id == partner_id, FloatTopup.bank_reference.like(f"{SETTLED_BY_BANK}%"))).scalar_one()
    return {"partner_id": partner_id, "topups_minor": topups, "settled_by_bank_minor": int(by_bank),
            "drawn_micro": drawn, "settled_rounding_micro": rounding, "balance_micro": balance,
            "float_overdraft_minor": overdraft, "enforced": overdraft is not None,
            "headroom_micro": None if overdraft is None else balance + overdraft * MICRO}


class FloatGuard:
    """Holds a partner's float for one unit of work: locked once, drawn in memory, event by event."""

    def __init__(self, tx: Tx, partner_id: str):
        self.tx, self.partner_id = tx, partner_id
        row = _limits(tx, partner_id, lock=True)  # serialises issuance of this partner on PostgreSQL
        self.overdraft = None if row is None else row.float_overdraft_minor
        self.headroom = 0
        # what the float has given in all (partner_limits.float_drawn_micro): a 64-bit column, added to by
        # every draw; a draw that would carry it past MAX_MICRO is refused, never left to overflow
        self.kept = None if row is None or row.float_drawn_micro is None else int(row.float_drawn_micro)
        if self.overdraft is not None:
            topups, drawn, rounding = _balance_micro(tx, partner_id, row)
            self.headroom = topups * MICRO - drawn + rounding + self.overdraft * MICRO

    def ensure(self, amount_micro: int, *, member_id: str, reference: str | None,
               referral_bonus_micro: int = 0) -> None:
        """Refuse (and alert) if the float cannot cover ``amount_micro`` (``referral_bonus_micro`` of it:
        the partner-funded referral bonus an earn would pay, which the refusal names); draws nothing."""
        if amount_micro <= 0:
            return
        if self.overdraft is not None and amount_micro > self.headroom:
            bonus = {"referral_bonus_micro": referral_bonus_micro} if referral_bonus_micro else {}
            raise_alert(self.tx, "float_exhausted", partner_id=self.partner_id, member_id=member_id,
                        reference=reference, needed_micro=amount_micro, headroom_micro=self.headroom, **bonus)
            raise FloatExhausted.needing(amount_micro, self.headroom, referral_bonus_micro=referral_bonus_micro)
        # checked here too, before the earn's limits count it (``Posting._earn_checks``): so ``draw`` never
        # refuses an earn the velocity limits have counted, and a quote (which checks in this order) agrees
        if self.kept is not None and self.kept + amount_micro > MAX_MICRO:
            raise FloatTotalTooLarge.needing(amount_micro, self.kept)

    def give_back(self, amount_micro: int) -> None:
        """A reversal in this unit took back prepaid funding drawn earlier: later events may draw it again,
        as they could once the reversal committed."""
        if amount_micro <= 0:
            return
        if self.kept is not None:  # kept (and added to) whether or not the float is enforced now
            self.kept -= amount_micro
        if self.overdraft is not None:
            self.headroom += amount_micro

    def draw(self, amount_micro: int, *, member_id: str, reference: str | None) -> None:
        if amount_micro <= 0:
            return
        if self.overdraft is not None:
            self.ensure(amount_micro, member_id=member_id, reference=reference)
        # a float no longer enforced keeps its total (it is summed anew only when enforced again), which
        # every prepaid issuance still adds to: the bound holds for it too
        if self.kept is not None:
            if self.kept + amount_micro > MAX_MICRO:
                raise FloatTotalTooLarge.needing(amount_micro, self.kept)
            self.kept += amount_micro
        if self.overdraft is None:
            return
        self.headroom -= amount_micro
        if self.headroom < self.overdraft * MICRO <= self.headroom + amount_micro:
            raise_alert(self.tx, "float_in_overdraft", partner_id=self.partner_id,
                        balance_micro=self.headroom - self.overdraft * MICRO)


@dataclass(frozen=True)
class Exposure:
    partner_id: str
    name: str
    outstanding_points: int
    value_minor: int
    limit_minor: int | None
    warn_ppm: int

    @property
    def state(self) -> str:
        if self.limit_minor is None:
            return "unlimited"
        if self.value_minor > self.limit_minor:
            return "exceeded"
        if self.value_minor * 1_000_000 > self.limit_minor * self.warn_ppm:
            return "near"
        return "ok"

    def json(self) -> dict:
        return {"partner_id": self.partner_id, "name": self.name, "outstanding_points": self.outstanding_points,
                "value_minor": self.value_minor, "limit_minor": self.limit_minor, "state": self.state}


def exposures(tx: Tx) -> list[Exposure]:
    """Every partner's outstanding postpaid points (what can still be redeemed of the lots it funded
    and has not bought out: free points of unexpired lots, and points open holds reserve in any lot,
    which a capture still redeems past the lot's expiry; after a buy-out the network reimburses their
    redemptions) and their value."""
    open_points = dict(tx.session.execute(
        select(Lot.funder_partner_id, func.sum(redeemable(tx.now))).where(*open_postpaid_lots(tx.now))
        .group_by(Lot.funder_partner_id)).all())
    limits = {row.partner_id: row for row in tx.session.scalars(select(PartnerLimits))}
    today = cycle_date_for(tx.now, tx.settings)
    result = []
    for partner_id, name in tx.session.execute(select(Partner.id, Partner.name).order_by(Partner.name)).all():
        points = int(open_points.get(partner_id) or 0)
        terms = terms_in_force(tx, partner_id, today)
        value = round_micro_to_minor(points * terms.point_value_micro)
        row = limits.get(partner_id)
        result.append(Exposure(partner_id, name, points, value, row.exposure_limit_minor if row else None,
                               row.exposure_warn_ppm if row else 800_000))
    return result


def check_exposure(tx: Tx) -> list[dict]:
    """The exposure job: an alert for every partner near or over its limit — standing conditions,
    which an acknowledgement holds until they clear (shared/alerts.py): near clears below the
    warning share, exceeded at or below the limit."""
    flagged, below_warning, within_limit, over = [], [], [], []
    for exposure in exposures(tx):
        if exposure.state in ("near", "exceeded"):
            raise_condition(tx, f"exposure_limit_{exposure.state}", partner_id=exposure.partner_id,
                            value_minor=exposure.value_minor, limit_minor=exposure.limit_minor,
                            outstanding_points=exposure.outstanding_points)
            flagged.append(exposure.json())
        else:
            below_warning.append(exposure.partner_id)
        if exposure.state != "exceeded":
            within_limit.append(exposure.partner_id)
        else:
            over.append(exposure.partner_id)
    renew_conditions(tx, "exposure_limit_near", over)  # over the limit is near it too: not cleared
    clear_conditions(tx, "exposure_limit_near", below_warning)
    clear_conditions(tx, "exposure_limit_exceeded", within_limit)
    return flagged


@dataclass(frozen=True)
class FloatDraw:
    """A float partner's prepaid funding of one cycle against its float, in minor units."""

    funding_minor: int  # the cycle's prepaid_funding sum, rounded once as on the statement
    from_float_minor: int  # the part of it the float held (all of a negative sum: refunds go back to it)
    # the exact sum less the rounded one, in micro-units: what settlement credits the float (signed) so
    # that the float gave exactly ``funding_minor`` (``settlements.float_rounding_micro``)
    rounding_micro: int = 0

    @property
    def short_minor(self) -> int:
        """What the float did not hold: due by bank with the cycle's settlement."""
        return self.funding_minor - self.from_float_minor


def _short_minor(funding_micro: int, drawn_micro: int, held_micro: int) -> tuple[int, int, int]:
    """(a cycle's funding rounded once to minor units, the part of it the float did not hold, the
    rounding the settlement credits the float): the float holds ``held_micro`` (top-ups and the earlier
    cycles' settlement credits) against ``drawn_micro``, every prepaid_funding line through the cycle,
    this cycle's counted as its statement has it (rounded); what that leaves below zero, rounded up and
    at most the funding, is short. A negative funding (reversals) is never short: it gives all of it
    back to the float."""
    funded = round_micro_to_minor(funding_micro)
    rounding = funding_micro - funded * MICRO
    if funded <= 0:
        return funded, 0, rounding
    short_micro = max(0, drawn_micro - rounding - held_micro)
    return funded, min(funded, -(-short_micro // MICRO)), rounding


def _settlement_cycle(reference: str) -> date | None:
    """The cycle a settlement's credit to the float answers (reference ``settlement:<cycle>``), or None."""
    if not reference.startswith(SETTLED_BY_BANK):
        return None
    try:
        return date.fromisoformat(reference[len(SETTLED_BY_BANK):])
    except ValueError:
        return None


def float_draws(tx: Tx, cycle: date) -> dict[str, FloatDraw]:
    """Per partner with a float enforced now and prepaid funding in ``cycle``: that funding (rounded
    once per cycle and payer, as on the statement; the payee is always the network) and the part of
    it settled from the float. Settlement keeps the part (``settlements.from_float_minor``), so a
    float enforced later does not change an old cycle's.

    The float settles only what it held as of the cycle, as if every cycle had been settled in date
    order, whatever order they are settled in (``pointsnet clearing run --cycle D`` settles any ended
    cycle). It holds the top-ups finance recorded so far and the credits of the earlier cycles'
    settlements (``credit_settled_by_bank``, and their rounding credits) — never a later cycle's,
    which answers that cycle's draws — less every prepaid_funding line of this cycle and the ones before
    it (the draws of later cycles, posted since the cut-off, are not this cycle's), this cycle's funding
    rounded as on its statement. An earlier cycle not settled yet counts as its settlement would have it
    now: the part of its funding the float did not hold is credited, due by bank with it, and so is its
    rounding. Where what the float held is below zero (an overdraft; a buy-out, which is never refused),
    the shortfall, rounded up to whole minor units and at most the cycle's funding, moves by bank; the
    rest comes from the float. A cycle whose funding is negative (reversals) gives it all back to the
    float. A partner whose cycle funding rounds to 0 is answered too (for its rounding credit).

    A float answers the cycles from the one open when it was (last) enforced
    (``partner_limits.float_opened_cycle``), and counts only their lines and those of the cycles it
    settled before (an earlier enforcement): a cycle before it is settled by bank, wholly, and its lines
    are not the float's (``partner_limits.float_opened_micro``; docs/ledger.md, decision 14).
    """
    lines, limits = ObligationLine, PartnerLimits
    enforced = select(limits.partner_id).where(limits.float_overdraft_minor.is_not(None))

    def funding(*when) -> list:
        """The exact sum's columns (``exact_sum``: one, or SQLite's two halves), each a scalar subquery."""
        return [select(func.coalesce(part, 0)).where(lines.payer == limits.partner_id, lines.kind == PREPAID_FUNDING,
                                                     *when).scalar_subquery()
                for part in exact_sum(tx, lines.amount_micro)]

    # One statement, so one snapshot on PostgreSQL: the kept total and the later cycles' lines agree
    # however many postings commit meanwhile (each adds its lines and its kept amount at once).
    # Probes of ix_obligation_lines_prepaid_funding (payer, cycle_date) per partner with a float. Drawn
    # through the cycle: every line up to it where no total is kept, else the kept total less the
    # later cycles' lines (taken off in Python: exact, as the sums are).
    in_cycle = funding(lines.cycle_date == cycle)
    summed = [case((limits.float_drawn_micro.is_(None), through), else_=later)
              for through, later in zip(funding(lines.cycle_date <= cycle), funding(lines.cycle_date > cycle))]
    rows, opened = [], {}
    for partner_id, kept, opened_cycle, not_floats, *parts in tx.session.execute(
            select(limits.partner_id, limits.float_drawn_micro, limits.float_opened_cycle,
                   limits.float_opened_micro, *in_cycle, *summed)
            .where(limits.float_overdraft_minor.is_not(None)).order_by(limits.partner_id)).all():
        if opened_cycle is not None and cycle < opened_cycle:
            continue  # before the float was enforced: settled by bank, its lines are not the float's
        opened[partner_id] = opened_cycle
        cycle_funding, other = exact_total(tx, parts[:len(in_cycle)]), exact_total(tx, parts[len(in_cycle):])
        drawn = other if kept is None else int(kept) - other
        rows.append((partner_id, cycle_funding, drawn - int(not_floats or 0)))
    if not rows:
        return {}

    # The earlier cycles not settled yet (normally none: the job settles them oldest first), read
    # before the credits: a settlement committing in between is then counted as not settled yet, its
    # credit left out for the figures its settlement has (it writes its run and its credit at once).
    unsettled = set(tx.session.execute(select(Cycle.cycle_date).where(
        Cycle.cycle_date < cycle,
        ~select(SettlementRun.cycle_date).where(SettlementRun.cycle_date == Cycle.cycle_date).exists())).scalars())
    horizon = min(unsettled, default=cycle)
    # A settlement's credit is recorded once its cycle has ended: those of the cycles from the
    # horizon on are all among the credits recorded since the horizon's end, read one by one; every
    # other top-up (finance's, and the credits of cycles before the horizon) is summed.
    recent = case((FloatTopup.bank_reference.like(f"{SETTLED_BY_BANK}%")
                   & (FloatTopup.recorded_at >= cycle_end(horizon, tx.settings)), FloatTopup.bank_reference))
    paid_in: dict[str, int] = {}
    credited: dict[str, dict[date, int]] = {}
    for partner_id, reference, amount in tx.session.execute(
            select(FloatTopup.partner_id, recent, func.sum(FloatTopup.amount_minor))
            .where(FloatTopup.partner_id.in_(enforced)).group_by(FloatTopup.partner_id, recent)).all():
        answers = None if reference is None else _settlement_cycle(reference)
        if answers is None or answers < horizon:
            paid_in[partner_id] = paid_in.get(partner_id, 0) + int(amount)
        elif answers < cycle:  # an earlier cycle's, counted below in date order
            credited.setdefault(partner_id, {})[answers] = int(amount)
        # a later cycle's (or this one's): it answers draws that are not this cycle's
    # the rounding credits of the cycles settled before the horizon, summed (every cycle before it is
    # settled); those of the cycles settled since, one by one below, in date order with the others
    rounded = dict(tx.session.execute(
        select(Settlement.party, func.sum(Settlement.float_rounding_micro))
        .where(Settlement.party.in_(enforced), Settlement.cycle_date < horizon)
        .group_by(Settlement.party)).all())
    window: dict[str, dict[date, int]] = {}
    shown: dict[str, dict[date, tuple[int, int]]] = {}  # settled since the horizon: (from float, rounding)
    if unsettled:
        for partner_id, day, *amount in tx.session.execute(
                select(lines.payer, lines.cycle_date, *exact_sum(tx, lines.amount_micro))
                .where(lines.payer.in_(enforced), lines.kind == PREPAID_FUNDING,
                       lines.cycle_date >= horizon, lines.cycle_date < cycle)
                .group_by(lines.payer, lines.cycle_date)).all():
            window.setdefault(partner_id, {})[day] = exact_total(tx, amount)
        for partner_id, day, from_float, rounding in tx.session.execute(
                select(Settlement.party, Settlement.cycle_date, Settlement.from_float_minor,
                       Settlement.float_rounding_micro)
                .where(Settlement.party.in_(enforced), Settlement.cycle_date >= horizon,
                       Settlement.cycle_date < cycle)).all():
            shown.setdefault(partner_id, {})[day] = (int(from_float), int(rounding))

    draws = {}
    for partner_id, cycle_funding, drawn in rows:
        held = paid_in.get(partner_id, 0) * MICRO + int(rounded.get(partner_id) or 0)
        credits, settled, since = credited.get(partner_id, {}), shown.get(partner_id, {}), opened[partner_id]
        # the float's cycles since the horizon: from the one it was enforced in, and those settled from it
        # before (an earlier enforcement); the others' lines are not the float's (settled by bank)
        ours = {day for day in window.get(partner_id, {}).keys() | credits.keys() | settled.keys()
                if since is None or day >= since or day in credits or any(settled.get(day, (0, 0)))}
        fundings = {day: amount for day, amount in window.get(partner_id, {}).items() if day in ours}
        # in date order: a settled one with the credits it had (its shortfall and its rounding), one not
        # settled yet with the credits its settlement would have now
        drawn_before = int(drawn) - int(cycle_funding) - sum(fundings.values())
        for day in sorted(ours):
            drawn_before += fundings.get(day, 0)
            if day in unsettled:
                _funded, short, rounding = _short_minor(fundings.get(day, 0), drawn_before, held)
                held += short * MICRO + rounding
            else:
                held += credits.get(day, 0) * MICRO + settled.get(day, (0, 0))[1]
        funded, short, rounding = _short_minor(int(cycle_funding), int(drawn), held)
        if funded or rounding:
            draws[partner_id] = FloatDraw(funded, funded - short, rounding)
    return draws


def settled_by_bank_reference(cycle) -> str:
    """The reference of a settlement's credit to a float (a prefix finance's top-ups cannot use)."""
    return f"{SETTLED_BY_BANK}{cycle.isoformat()}"


def credit_settled_by_bank(tx: Tx, partner_id: str, cycle, amount_minor: int) -> None:
    """Credit the float with the funding of ``cycle`` it did not hold, which the cycle's settlement
    makes due by bank: the float is not short of it any more (the settlement is), so the partner
    does not owe it twice — by bank and again by a top-up. Recorded as a top-up with the reference
    ``settlement <cycle>``, once per cycle (settlement runs once per cycle)."""
    if amount_minor <= 0:
        return
    tx.session.add(FloatTopup(id=new_id("top"), partner_id=partner_id, amount_minor=amount_minor,
                              bank_reference=settled_by_bank_reference(cycle), recorded_at=tx.now))
    tx.session.flush()
