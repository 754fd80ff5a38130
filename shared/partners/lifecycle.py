"""A partner's life in the network: active, suspended, terminated.

Suspended: the API refuses every POST of the partner (403 ``partner_suspended``: earns, burns,
holds, enrolments, ...) and still answers its signed reads (statements, reports, transactions); its
points stay redeemable at other partners and settlement goes on. Terminated: suspended for
good, with a recorded final cycle (the cycle open at termination); the API answers only its signed
reads of its statements, since it still settles; of the webhooks it gets ``settlement.ready`` alone (no
event about a member is queued for it, and those pending at termination are ``cancelled``, never sent:
shared/webhooks/outbox.py). The partner's outstanding
points stay redeemable elsewhere. Under ``keep_paying`` the issuer keeps reimbursing those
redemptions under its last contract: they appear on its statements in later cycles as usual.
Under ``buy_out`` it pays, once and in its final cycle, the buy-out rate times the value of its
open postpaid points — those that can still be redeemed: what remains of lots not past their expiry,
and what open holds reserve in lots past it (``redeemable``) — per lot, at the lot's contract point
value; those lots are marked bought out and the network reimburses their later redemptions.
Postpaid expiry moves no money, so the network keeps what a bought-out lot leaves to expire (held
points of a lot past its expiry that a void or a timeout releases too). Reversals after a buy-out
keep it square (``Posting._not_bought_out_with``, ``Posting._fund_bought_out``,
``Posting._reverse_earn``; docs/ledger.md, decision 16).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, and_, case, cast, exists, func, or_, select, update

from shared.db.advisory import lock_until_commit
from shared.db.database import Tx
from shared.errors import Conflict, ValidationFailed
from shared.ledger.cycles import cycle_date_for
from shared.ledger.cycles import enter_open_cycle
from shared.ledger.journal import Journal
from shared.ledger.rules import NETWORK, Line
from shared.ledger.state import lock_members
from shared.models import Contract, Hold, HoldLot, Lot, Partner, Termination
from shared.money import apply_rate_ppm
from shared.partners.contracts import lock_partner, require_partner
from shared.webhooks.outbox import TERMINATED, cancel_member_events

# the buy-out entry's reference: the network posts it for the issuer (its statement shows it in its
# ``reference`` column), so reconciliation matches it by transaction id as well (settlement-files.md)
BUY_OUT_REFERENCE = "termination-buy-out"


class PartnerTerminated(Conflict):
    status, code, title = 403, "partner_terminated", "Partner has left the network"


class PartnerAlreadySuspended(Conflict):
    code, title = "partner_already_suspended", "The partner is already suspended"


class PartnerAlreadyActive(Conflict):
    code, title = "partner_already_active", "The partner is already active"


def hold_off_termination(tx: Tx, partner_id: str) -> None:
    """A posting under the partner: until it commits, no termination of the partner begins (on
    PostgreSQL a shared advisory lock, which a termination takes exclusively; SQLite's writers run
    one at a time). Taken before the posting reads the partner's status, so a posting queued behind
    a termination reads the partner suspended. The lock queue is fair: once a termination waits,
    new postings wait behind it, so a busy partner cannot keep it waiting."""
    if tx.is_postgres:
        lock_until_commit(tx.session, "partner-postings", partner_id, shared=True)


def wait_for_postings(tx: Tx, partner_id: str) -> None:
    """Wait for the partner's postings in flight, and hold off new ones until commit (a termination;
    the first enforcement of a float, which sums what the postings draw)."""
    if tx.is_postgres:
        lock_until_commit(tx.session, "partner-postings", partner_id)


def _termination(tx: Tx, partner_id: str) -> Termination | None:
    return tx.session.get(Termination, partner_id)


def is_terminated(tx: Tx, partner_id: str) -> bool:
    return _termination(tx, partner_id) is not None


def buy_out_rate(tx: Tx, partner_id: str) -> int | None:
    """The rate at which the partner bought out its points when it left, or None (no buy-out)."""
    row = _termination(tx, partner_id)
    return row.buy_out_rate_ppm if row is not None and row.settlement == "buy_out" else None


def set_status(tx: Tx, partner_id: str, status: str, *, refuse_unchanged: bool = False) -> dict:
    """Suspend (``suspended``) or reactivate (``active``) a partner; a terminated partner stays out.
    ``refuse_unchanged``: a status the partner already has is refused (``partner_already_suspended``,
    ``partner_already_active``) rather than set again (a stale form, a request approved after the
    partner was suspended another way)."""
    if status not in ("active", "suspended"):
        raise ValidationFailed(f"unknown partner status {status!r}")
    require_partner(tx, partner_id)
    lock_partner(tx, partner_id)  # a termination committing meanwhile is seen, not overwritten
    refuse_status(tx, partner_id, status, unchanged=refuse_unchanged)
    tx.session.execute(update(Partner).where(Partner.id == partner_id).values(status=status))
    return {"partner_id": partner_id, "status": status}


class TerminationConflict(Conflict):
    code, title = "termination_conflict", "The partner was already terminated on other terms"


def refuse_status(tx: Tx, partner_id: str, status: str, *, unchanged: bool = True) -> None:
    """Refuse a status change a terminated partner cannot have, or (``unchanged``) one it already has."""
    if _termination(tx, partner_id) is not None:
        raise PartnerTerminated(f"partner {partner_id} was terminated; it cannot be {status} again")
    if unchanged and tx.session.scalar(select(Partner.status).where(Partner.id == partner_id)) == status:
        error = PartnerAlreadySuspended if status == "suspended" else PartnerAlreadyActive
        raise error(f"partner {partner_id} is already {status}", partner_id=partner_id)


def terminate(tx: Tx, partner_id: str, *, settlement: str = "keep_paying", buy_out_rate_ppm: int | None = None) -> dict:
    """Terminate a partner now: its final cycle is the open one; its points stay redeemable elsewhere.

    ``keep_paying``: the issuer keeps reimbursing redemptions of its points. ``buy_out``: the issuer
    pays ``buy_out_rate_ppm`` of the value of its outstanding postpaid points once, in its final cycle,
    and the network reimburses their redemptions from then on.
    """
    require_partner(tx, partner_id)
    if settlement not in ("keep_paying", "buy_out"):
        raise ValidationFailed(f"settlement is keep_paying or buy_out, not {settlement!r}")
    if (settlement == "buy_out") != (buy_out_rate_ppm is not None):
        raise ValidationFailed("a buy-out needs a rate, and only a buy-out has one")
    if buy_out_rate_ppm is not None and not 0 <= buy_out_rate_ppm <= 1_000_000:
        raise ValidationFailed("the buy-out rate is between 0 and 1")
    wait_for_postings(tx, partner_id)  # so the lots they issue are counted (and bought out)
    lock_partner(tx, partner_id)  # one termination at a time per partner, and not beside a reactivation
    existing = _termination(tx, partner_id)
    if existing is not None:
        if (existing.settlement, existing.buy_out_rate_ppm) != (settlement, buy_out_rate_ppm):
            # until 2026-12-07 the first termination was printed, exit 0, as if the terms asked were applied
            raise TerminationConflict(
                f"partner {partner_id} was already terminated with {existing.settlement}"
                + (f" at a buy-out rate of {existing.buy_out_rate_ppm / 1_000_000:g}"
                   if existing.buy_out_rate_ppm is not None else "")
                + "; a termination's terms cannot change", partner_id=partner_id)
        return termination_json(existing) | {"recorded": False}
    # Suspend first, in this transaction: from its commit on, no new lot of this partner can appear.
    tx.session.execute(update(Partner).where(Partner.id == partner_id).values(status="suspended"))
    outstanding, entry_id = _buy_out(tx, partner_id, buy_out_rate_ppm) if settlement == "buy_out" else (
        _outstanding(tx, partner_id), None)
    row = Termination(partner_id=partner_id, final_cycle=cycle_date_for(tx.now, tx.settings),
                      settlement=settlement, buy_out_rate_ppm=buy_out_rate_ppm, outstanding_points=outstanding,
                      buy_out_entry_id=entry_id, recorded_at=tx.now)
    tx.session.add(row)
    tx.session.flush()
    # its member events still pending are never sent (it sees no member any more); settlement.ready goes on
    cancel_member_events(tx, partner_id, TERMINATED)
    return termination_json(row) | {"recorded": True}


def _others_holds(*columns):
    """``columns`` of the reservations in a lot (correlated with ``Lot``) by open holds of partners other
    than its funder. A capture of the funder's own hold redeems its points where they were funded, which
    moves no money, and once the funder is terminated it captures nothing: past the lot's expiry such
    points only expire, so they are no liability of the funder's (until 2026-12-07 a buy-out charged for
    them)."""
    return (select(*columns).join(Hold, Hold.id == HoldLot.hold_id)
            .where(HoldLot.lot_id == Lot.id, Hold.status == "open", Hold.partner_id != Lot.funder_partner_id))


def _held_by_others():
    """The points of a lot that other partners' open holds reserve (``_others_holds``)."""
    return _others_holds(func.coalesce(func.sum(HoldLot.points), 0)).scalar_subquery()


def open_postpaid_lots(now):
    """Postpaid lots not bought out with points that can still be redeemed: free points of a lot not
    past its expiry, and points that other partners' open holds reserve in any lot (an open hold's points
    do not expire while held, and a capture redeems them — ARCHITECTURE "Holds"; ``_others_holds``).
    The buy-out and the exposure check count these."""
    return (Lot.billing == "postpaid", Lot.remaining > 0,
            or_(Lot.expires_at > now, and_(Lot.reserved > 0, exists(_others_holds(HoldLot.lot_id)))),
            Lot.bought_out_at.is_(None))


def _open_lots(partner_id: str, now):
    """The issuer's open postpaid lots (``open_postpaid_lots``)."""
    return (Lot.funder_partner_id == partner_id, *open_postpaid_lots(now))


def redeemable(now):
    """What of a lot can still be redeemed at ``now``: all it holds while not past its expiry; past
    it, only what other partners' open holds reserve (the free rest only expires, and so does what the
    funder's own holds reserve: ``_held_by_others``). Reserved points count whatever their hold's
    timeout: a hold past its timeout that no job has released yet cannot be captured, but a unit that
    began before its timeout may still capture it, so its points are counted too (released, they
    expire: see ``_buy_out``)."""
    # an integer on PostgreSQL too, where the CASE of a BIGINT and a SUM would be a NUMERIC (a Decimal)
    return cast(case((Lot.expires_at > now, Lot.remaining), else_=_held_by_others()), BigInteger)


def _outstanding(tx: Tx, partner_id: str) -> int:
    return int(tx.session.execute(select(func.coalesce(func.sum(redeemable(tx.now)), 0))
                                  .where(*_open_lots(partner_id, tx.now))).scalar_one())


def _buy_out(tx: Tx, partner_id: str, rate_ppm: int) -> tuple[int, str | None]:
    """One adjustment entry: the issuer funds each open lot at the rate; the network takes the lots over.

    A lot past its expiry that open holds still reserve is bought out for its reserved points alone:
    a capture redeems them after the buy-out at the network's expense; what a void or a timeout
    releases expires at once, and postpaid expiry moves no money, so the network keeps what the
    issuer paid for them — as for a bought-out lot whose points expire later.

    An issuer without an open lot writes no entry, and enters no cycle: on a network without a single
    entry that would leave a ``cycles`` row before its first cycle. None can appear meanwhile: the
    issuer's postings, and the reversals into its lots, wait for the termination."""
    if tx.session.execute(select(Lot.id).where(*_open_lots(partner_id, tx.now)).limit(1)).first() is None:
        return 0, None
    journal = Journal(tx, enter_open_cycle(tx))
    journal.members = _lock_holders(tx, partner_id)  # racing burns finish first, or see the buy-out
    lots = tx.session.execute(select(Lot.id, redeemable(tx.now).label("points"), Lot.contract_id)
                              .where(*_open_lots(partner_id, tx.now)).order_by(Lot.id)).all()
    if not lots:
        return 0, None
    values = {row.id: row.point_value_micro for row in tx.session.execute(
        select(Contract.id, Contract.point_value_micro).where(Contract.id.in_({lot.contract_id for lot in lots})))}
    total = sum(lot.points for lot in lots)
    entry = journal.entry("adjustment", total, partner_id=partner_id, reference=BUY_OUT_REFERENCE,
                          occurred_at=tx.now, request={"kind": "buy_out", "rate_ppm": rate_ppm})
    journal.transfer(entry, "network:adjustments", f"partner:{partner_id}:issued", total)
    funding = 0
    for lot in lots:
        amount = apply_rate_ppm(lot.points * values[lot.contract_id], rate_ppm)
        if amount:
            journal.line(entry, Line(partner_id, NETWORK, "prepaid_funding", lot.points, amount,
                                     lot.contract_id, lot.id))
            funding += amount
    entry["result"] = {"entry_id": entry["id"], "kind": "adjustment", "buy_out_points": total,
                       "rate_ppm": rate_ppm, "lots": len(lots)}
    from shared.partners.limits import stop_keeping_a_float_total_it_would_overflow  # limits imports this module

    stop_keeping_a_float_total_it_would_overflow(tx, partner_id, funding)
    journal.flush()
    tx.session.execute(update(Lot).where(Lot.id.in_([lot.id for lot in lots])).values(bought_out_at=tx.now))
    return total, entry["id"]


def _lock_holders(tx: Tx, partner_id: str) -> dict:
    """Lock the members holding the issuer's open lots (``lock_members``). They are read before their
    locks: a merge that committed meanwhile has moved a lot to its survivor, which a burn may be taking
    from now. So once locked the holders are read again, and any new one is locked too, until what was
    read holds under the locks (each round follows a merge that committed; no lot of the issuer can
    be issued or come back meanwhile: its postings and the reversals into its lots wait for the
    termination). On PostgreSQL the locks are then taken again, all in id order, from a savepoint set
    before them, as ``Posting._lock_members`` does."""
    holders = _holders(tx, partner_id)
    while True:
        savepoint = tx.session.begin_nested() if tx.is_postgres else None
        members = lock_members(tx, holders)
        moved = _holders(tx, partner_id) - holders  # to survivors not locked yet
        if not moved:
            if savepoint is not None:
                savepoint.commit()
            return members
        holders |= moved
        if savepoint is not None:
            savepoint.rollback()  # lets go of the locks taken since; taken again in order


def _holders(tx: Tx, partner_id: str) -> set[str]:
    return set(tx.session.scalars(select(Lot.member_id).where(*_open_lots(partner_id, tx.now)).distinct()))


def termination_json(row: Termination) -> dict:
    return {"partner_id": row.partner_id, "status": "terminated", "final_cycle": row.final_cycle.isoformat(),
            "settlement": row.settlement, "buy_out_rate_ppm": row.buy_out_rate_ppm,
            "outstanding_points_at_termination": row.outstanding_points, "buy_out_entry_id": row.buy_out_entry_id}


def lifecycle_status(tx: Tx) -> dict[str, str]:
    """Every partner's status as operators see it: active, suspended or terminated."""
    terminated = set(tx.session.scalars(select(Termination.partner_id)))
    return {pid: ("terminated" if pid in terminated else status)
            for pid, status in tx.session.execute(select(Partner.id, Partner.status))}
