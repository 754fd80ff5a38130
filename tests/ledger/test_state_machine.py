"""A Hypothesis state machine over random ledger histories, checked against an independent model.

Every example gets a fresh, migrated database (a copy of the session's SQLite
template, or a truncated PostgreSQL) and its own fixed clock. Rules drive random
sequences of earn, network bonus, burn, hold, capture (full and partial), void,
reversals (of earns, burns and captures; full and partial; and a few that must be
refused), clock jumps, and the hold-timeout and lot-expiry jobs, over four partners
(postpaid and prepaid contracts) and three members linked to all of them.

The model knows every lot (remaining, reserved, expiry, funder), every hold, every
earn (how much is left to reverse) and every burn/capture (what it can still give
back, lot by lot), and applies the design's rules to them on its own:

* burns and holds take lots earliest-expiry first (tie: oldest, then id), only from
  free (unreserved) points, and expire the member's due lots first;
* a hold captures from its reserved lots in reservation order and releases the
  rest; a hold past its 15-minute timeout cannot be captured or voided;
* reversing an earn takes only what remains of its lot (after expiring it if it
  is due), else ``PointsAlreadySpent`` with the remaining amount and no entry of
  its own; reversing a burn or capture returns points in reverse consumption
  order, and a lot past its expiry comes back with ``max(original, now + 30 days)``;
* expiry moves the free points of due lots to breakage; reserved points never expire.

After every step: each member's available and held balance and every open lot
(remaining, reserved, expires_at) equal the model, ``pointsnet verify`` passes,
refusals happened exactly where the model said so and wrote nothing but the
expiry that was due anyway, and the money is right: no line has payer == payee,
the whole database's lines net to exactly zero, every reversal line is the exact
cumulative pro-rata share of its original, and per lot the net points of each
kind of line equal what the model says was issued, redeemed where, and expired.
"""

from __future__ import annotations

import itertools
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, settings as hsettings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import func, select

from shared.clock import FixedClock
from shared.config import Settings
from shared.errors import (
    CaptureExceedsHold, HoldNotOpen, InsufficientPoints, NotReversible, PointsAlreadySpent,
    ReversalExceedsRemaining, UnknownReference,
)
from shared.ledger import state
from shared.ledger.queries import member_balance
from shared.ledger.rules import NETWORK
from shared.models import Entry, ObligationLine
from shared.money import apply_rate_ppm, prorate
from shared.network import Network
from shared.settlement.netting import bilateral_sums, net_positions
from tests.conftest import PG_URL, START, _reset_postgres
from tests.factories import make_member, make_partner, verify_ok

TTL = timedelta(days=365)
HOLD_TIMEOUT = timedelta(minutes=15)
GRACE = timedelta(days=30)

# Postpaid and prepaid contracts, with awkward values so rounding is exercised.
PARTNER_TERMS = [
    dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05"),
    dict(billing="prepaid", point_value="1.2", issuance_fee="0.05", redemption_fee_rate="0.03", breakage_share="0.3"),
    dict(billing="postpaid", point_value="0.7", redemption_fee_rate="0.071"),
    dict(billing="prepaid", point_value="0.333333", breakage_share="0.5"),
]
N_PARTNERS = len(PARTNER_TERMS)
N_MEMBERS = 3
# How much to ask for, relative to what there is: see LedgerMachine.size.
SHARE = st.one_of(st.integers(0, 100), st.integers(0, 1))


def micro(value: str) -> int:
    return int(Decimal(value) * 1_000_000)


@dataclass
class MTerms:
    billing: str
    pv: int  # point value, micro per point
    fee: int  # issuance fee, micro per point
    red_ppm: int
    brk_ppm: int

    @classmethod
    def of(cls, terms: dict) -> "MTerms":
        return cls(terms["billing"], micro(terms.get("point_value", "1")), micro(terms.get("issuance_fee", "0")),
                   micro(terms.get("redemption_fee_rate", "0")), micro(terms.get("breakage_share", "0")))


@dataclass
class MLot:
    id: str
    member: str
    funder: str | None  # partner id, or None: the network
    billing: str  # postpaid | prepaid | network
    points: int
    remaining: int
    issued_at: datetime
    expires_at: datetime
    reserved: int = 0
    expired: int = 0  # points that went to breakage
    reversed: int = 0  # points taken back by reversals of its earn

    @property
    def free(self) -> int:
        return self.remaining - self.reserved

    def key(self) -> tuple:
        return (self.expires_at, self.issued_at, self.id)


@dataclass
class MEarn:
    partner: str
    reference: str
    member: str
    lot: str
    points: int
    reversed: int = 0


@dataclass
class MSpend:
    """A burn or a capture: what it took, lot by lot in consumption order, still returnable."""

    kind: str
    partner: str
    reference: str
    member: str
    taken: list[list] = field(default_factory=list)  # [lot_id, returnable]

    @property
    def returnable(self) -> int:
        return sum(points for _, points in self.taken)


@dataclass
class MHold:
    id: str
    partner: str
    reference: str
    member: str
    points: int
    lots: list[tuple[str, int]]  # (lot id, reserved points) in reservation order
    expires_at: datetime
    status: str = "open"
    lot_expiries: dict[str, datetime] = field(default_factory=dict)  # each lot's expiry when it was reserved


_examples = itertools.count()


class LedgerMachine(RuleBasedStateMachine):
    """Set ``context`` to (template database, scratch directory, Settings) before running."""

    context: tuple[str, Path, Settings] | None = None

    def __init__(self):
        super().__init__()
        template, scratch, app_settings = type(self).context
        self.db_path: Path | None = None
        if PG_URL:
            _reset_postgres(PG_URL)
            url = PG_URL
        else:
            self.db_path = scratch / f"machine-{next(_examples)}.db"
            shutil.copyfile(template, self.db_path)
            url = f"sqlite:///{self.db_path}"
        self.clock = FixedClock(START)
        self.network = Network(app_settings, database_url=url, clock=self.clock, pool_size=2)
        self.partners = [make_partner(self.network, f"Partner {i}", **terms) for i, terms in enumerate(PARTNER_TERMS)]
        self.terms = {pid: MTerms.of(terms) for pid, terms in zip(self.partners, PARTNER_TERMS)}
        self.members = [make_member(self.network, self.partners[0], also_linked_to=tuple(self.partners[1:]))
                        for _ in range(N_MEMBERS)]
        self.lots: dict[str, MLot] = {}
        self.earns: list[MEarn] = []
        self.lapse_entries = 0  # expiry entries of released held points this step (``release``)
        self.spends: list[MSpend] = []
        self.holds: list[MHold] = []
        self.redeemed: dict[tuple[str, str], int] = {}  # (lot, redeemer) -> net points, where redeemer != funder
        self.refs = itertools.count(1)
        self.entry_count = self.count_entries()

    def teardown(self):
        self.network.close()
        if self.db_path is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)

    # -- model helpers ---------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        return self.clock.now()

    def lot_expiry(self) -> datetime:
        """A lot earned now expires after TTL: the machine pins the policy to ``days:365``
        (calendar policies have their own tests in test_expiry_policy.py)."""
        return self.now + TTL

    def ref(self) -> str:
        return f"ref-{next(self.refs)}"

    def lots_of(self, member: str) -> list[MLot]:
        return [lot for lot in self.lots.values() if lot.member == member]

    def available(self, member: str) -> int:
        return sum(lot.free for lot in self.lots_of(member))

    def held(self, member: str) -> int:
        return sum(lot.reserved for lot in self.lots_of(member))

    def balance(self, member: str) -> dict:
        return {"available": self.available(member), "held": self.held(member)}

    def balance_now(self, member: str) -> dict:
        """The balance a posting answers: as a spend now would find it, holds past their timeout released
        and points past their expiry gone, though no job has written so (docs/ledger.md, decision 6)."""
        available, held = self.available(member), self.held(member)
        for hold in self.holds:
            if hold.member == member and hold.status == "open" and hold.expires_at <= self.now:
                available, held = available + hold.points, held - hold.points
                # released points expire at once if their lot is past its expiry, or was when they were
                # reserved (a reversal's grace since is not theirs: decision 13)
                available -= sum(reserved for lot_id, reserved in hold.lots
                                 if min(self.lots[lot_id].expires_at, hold.lot_expiries[lot_id]) <= self.now)
        available -= sum(lot.free for lot in self.lots_of(member) if lot.expires_at <= self.now)
        return {"available": available, "held": held}

    def expire(self, lots: list[MLot]) -> int:
        """Due lots lose their free points to breakage; reserved points stay."""
        total = 0
        for lot in lots:
            if lot.expires_at <= self.now and lot.free > 0:
                lot.expired += lot.free
                total += lot.free
                lot.remaining = lot.reserved
        return total

    def snapshot(self, lots: list[MLot]):
        """A refusal rolls back its whole unit of work, lazy expiry and hold release included: undo it
        in the model."""
        saved = [(lot, lot.remaining, lot.expired, lot.reserved) for lot in lots]
        statuses = [(hold, hold.status) for hold in self.holds]
        lapse_entries = self.lapse_entries

        def restore():
            for lot, remaining, expired, reserved in saved:
                lot.remaining, lot.expired, lot.reserved = remaining, expired, reserved
            for hold, status in statuses:
                hold.status = status
            self.lapse_entries = lapse_entries
        return restore

    def release_lapsed(self, member: str, expiring: list[MLot] | None = None) -> tuple[int, bool]:
        """A spend the member's available points do not cover, while some are held, first releases the
        member's timed-out holds as the job would, then expires what that returned to due lots (of
        ``expiring``: the member's, or for an earn reversal the earn's lot alone).
        Returns how many holds it released and whether anything expired."""
        lapsed = [h for h in self.holds if h.member == member and h.status == "open" and h.expires_at <= self.now]
        for hold in lapsed:
            hold.status = "expired"
            self.release(hold, 0)
        due = self.lots_of(member) if expiring is None else expiring
        return len(lapsed), bool(lapsed) and bool(self.expire(due))

    def take(self, member: str, points: int) -> list[tuple[MLot, int]]:
        """Earliest expiry first; tie: oldest first, then id; free points only."""
        plan, left = [], points
        for lot in sorted((lot for lot in self.lots_of(member) if lot.free > 0), key=MLot.key):
            if left == 0:
                break
            take = min(lot.free, left)
            plan.append((lot, take))
            left -= take
        assert left == 0
        return plan

    def redeem(self, partner: str, lot: MLot, points: int) -> None:
        if lot.funder != partner:
            self.redeemed[(lot.id, partner)] = self.redeemed.get((lot.id, partner), 0) + points

    def spender(self, m: int) -> str:
        """Mostly a member with points (as the model sees them now); a broke one only if nobody has any."""
        rich = [member for member in self.members if self.available(member) > 0]
        return (rich or self.members)[m % len(rich or self.members)]

    @staticmethod
    def size(of: int, how: int) -> int:
        """Points to ask for, relative to what the model says is there: ``how`` 0 asks one too many,
        1 exactly all, 2..100 that percentage (at least 1 point)."""
        if how == 0:
            return of + 1
        if how == 1:
            return max(of, 1)
        return max(1, of * how // 100)

    def count_entries(self) -> int:
        return self.network.tx(lambda tx: tx.session.execute(select(func.count()).select_from(Entry)).scalar_one(),
                               readonly=True)

    def expect_entries(self, written: int) -> None:
        """Exactly ``written`` new entries since the last step, and the ``expiry`` entries of held points
        released past the expiry they were reserved under (``release``)."""
        written, self.lapse_entries = written + self.lapse_entries, 0
        now = self.count_entries()
        assert now - self.entry_count == written, f"expected {written} new entries, found {now - self.entry_count}"
        self.entry_count = now

    def refused(self, error_type, call, **extra):
        event(f"refused: {error_type.__name__}")
        with pytest.raises(error_type) as caught:
            call()
        for key, value in extra.items():
            assert caught.value.extra.get(key) == value, (key, caught.value.extra)
        return caught.value

    # -- earning ---------------------------------------------------------------------------
    @initialize(starts=st.lists(st.tuples(st.integers(0, N_PARTNERS - 1), st.integers(1, 1000)),
                                min_size=N_MEMBERS, max_size=N_MEMBERS))
    def opening_balances(self, starts):
        for m, (p, points) in enumerate(starts):
            self.earn(p, m, points)

    @rule(p=st.integers(0, N_PARTNERS - 1), m=st.integers(0, N_MEMBERS - 1), points=st.integers(1, 1000))
    def earn(self, p, m, points):
        event("earn")
        partner, member, reference = self.partners[p], self.members[m], self.ref()
        result = self.network.earn(partner, member, reference, points=points)
        [lot] = result["lots"]
        assert (lot["points"], lot["funded_by"]) == (points, partner)
        assert lot["expires_at"] == self.lot_expiry().isoformat()
        self.lots[lot["lot_id"]] = MLot(lot["lot_id"], member, partner, self.terms[partner].billing, points, points,
                                        self.now, self.lot_expiry())
        self.earns.append(MEarn(partner, reference, member, lot["lot_id"], points))
        assert result["balance"] == self.balance_now(member)
        self.expect_entries(1)

    @rule(m=st.integers(0, N_MEMBERS - 1), points=st.integers(1, 300))
    def bonus(self, m, points):
        event("bonus")
        member = self.members[m]
        result = self.network.grant_bonus(member, points, reason="network campaign")
        [lot] = result["lots"]
        assert lot["funded_by"] == NETWORK
        assert lot["expires_at"] == self.lot_expiry().isoformat()
        self.lots[lot["lot_id"]] = MLot(lot["lot_id"], member, None, "network", points, points, self.now,
                                        self.lot_expiry())
        assert result["balance"] == self.balance_now(member)
        self.expect_entries(1)

    # -- spending --------------------------------------------------------------------------
    @rule(p=st.integers(0, N_PARTNERS - 1), m=st.integers(0, N_MEMBERS - 1), how=SHARE)
    def burn(self, p, m, how):
        partner, member, reference = self.partners[p], self.spender(m), self.ref()
        restore = self.snapshot(self.lots_of(member))
        expired = self.expire(self.lots_of(member))  # a burn first expires the member's due lots
        points = self.size(self.available(member), how)
        released, expired_again = self.release_lapsed(member) if points > self.available(member) else (0, False)
        if points > self.available(member):
            self.refused(InsufficientPoints, lambda: self.network.burn(partner, member, reference, points),
                         available=self.available(member))
            restore()  # ...but a refusal writes nothing at all
            self.expect_entries(0)
            return
        result = self.network.burn(partner, member, reference, points)
        plan = self.take(member, points)
        assert result["consumed"] == [{"lot_id": lot.id, "points": take} for lot, take in plan]
        event("burn" + (" after lazy expiry" if expired else "") + (" after a hold's release" if released else ""))
        spend = MSpend("burn", partner, reference, member)
        for lot, take in plan:
            lot.remaining -= take
            self.redeem(partner, lot, take)
            spend.taken.append([lot.id, take])
        self.spends.append(spend)
        assert result["balance"] == self.balance_now(member)
        self.expect_entries(1 + (1 if expired else 0) + released + (1 if expired_again else 0))

    @rule(p=st.integers(0, N_PARTNERS - 1), m=st.integers(0, N_MEMBERS - 1), how=SHARE)
    def hold(self, p, m, how):
        partner, member, reference = self.partners[p], self.spender(m), self.ref()
        restore = self.snapshot(self.lots_of(member))
        expired = self.expire(self.lots_of(member))
        points = self.size(self.available(member), how)
        released, expired_again = self.release_lapsed(member) if points > self.available(member) else (0, False)
        if points > self.available(member):
            self.refused(InsufficientPoints, lambda: self.network.hold(partner, member, reference, points),
                         available=self.available(member))
            restore()
            self.expect_entries(0)
            return
        result = self.network.hold(partner, member, reference, points)
        assert result["expires_at"] == (self.now + HOLD_TIMEOUT).isoformat()
        plan = self.take(member, points)
        for lot, take in plan:
            lot.reserved += take
        event("hold" + (" after lazy expiry" if expired else "") + (" after a hold's release" if released else ""))
        self.holds.append(MHold(result["hold_id"], partner, reference, member, points,
                                [(lot.id, take) for lot, take in plan], self.now + HOLD_TIMEOUT,
                                lot_expiries={lot.id: lot.expires_at for lot, _ in plan}))
        assert result["balance"] == self.balance_now(member)
        self.expect_entries(1 + (1 if expired else 0) + released + (1 if expired_again else 0))

    def hold_refusal(self, hold: MHold):
        if hold.status != "open":
            return HoldNotOpen
        if hold.expires_at <= self.now:  # timed out, whether or not the job has released it yet
            return HoldNotOpen
        return None

    def release(self, hold: MHold, captured: int) -> list[list]:
        """Capture ``captured`` points from the reserved lots in reservation order; the rest returns,
        but what returns to a lot whose expiry had passed by the time of the reservation's date expires
        at once, though a reversal's grace gave the lot a later date since (decision 13: one ``expiry``
        entry for the hold, counted into the step's entries; a lot still past its expiry is left to
        ``expire``)."""
        taken, left, lapsed = [], captured, False
        for lot_id, reserved in hold.lots:
            lot = self.lots[lot_id]
            lot.reserved -= reserved
            take = min(reserved, left)
            if take:
                lot.remaining -= take
                self.redeem(hold.partner, lot, take)
                taken.append([lot_id, take])
                left -= take
            back = reserved - take
            if back and hold.lot_expiries[lot_id] <= self.now < lot.expires_at:
                lot.remaining -= back
                lot.expired += back
                lapsed = True
        self.lapse_entries += lapsed
        return taken

    def pick_hold(self, i: int, any_hold: bool) -> MHold:
        """Mostly an open, unexpired hold; sometimes any hold (resolved or timed out: must be refused)."""
        live = [h for h in self.holds if h.status == "open" and h.expires_at > self.now]
        pool = self.holds if any_hold or not live else live
        return pool[i % len(pool)]

    @precondition(lambda self: self.holds)
    @rule(i=st.integers(0, 10**6), any_hold=st.integers(0, 4).map(lambda n: n == 0),
          how=st.sampled_from([None, "quarter", "half", "all", "one", "over"]))
    def capture(self, i, any_hold, how):
        hold = self.pick_hold(i, any_hold)
        points = {None: None, "quarter": max(1, hold.points // 4), "half": max(1, hold.points // 2),
                  "all": hold.points, "one": 1, "over": hold.points + 1}[how]
        reference = self.ref()
        call = lambda: self.network.capture(hold.partner, hold.id, points, reference=reference)  # noqa: E731
        error = self.hold_refusal(hold) or (CaptureExceedsHold if points is not None and points > hold.points else None)
        if error is not None:
            self.refused(error, call)
            self.expect_entries(0)
            return
        result = call()
        captured = hold.points if points is None else points
        assert (result["captured"], result["released"]) == (captured, hold.points - captured)
        hold.status = "captured"
        spend = MSpend("capture", hold.partner, reference, hold.member, self.release(hold, captured))
        self.spends.append(spend)
        expired = self.expire(self.lots_of(hold.member))  # released points of a due lot expire at once
        event(f"capture {'full' if captured == hold.points else 'partial'}{', release expired' if expired else ''}")
        assert result["balance"] == self.balance_now(hold.member)
        self.expect_entries(1 + (1 if expired else 0))

    @precondition(lambda self: self.holds)
    @rule(i=st.integers(0, 10**6), any_hold=st.integers(0, 4).map(lambda n: n == 0))
    def void(self, i, any_hold):
        hold = self.pick_hold(i, any_hold)
        if i % 10 == 0:  # a hold is voided, never reversed
            self.refused(NotReversible, lambda: self.network.reverse(hold.partner, self.ref(), hold.reference, 1))
            self.expect_entries(0)
            return
        call = lambda: self.network.void(hold.partner, hold.id)  # noqa: E731
        error = self.hold_refusal(hold)
        if error is not None:
            self.refused(error, call)
            self.expect_entries(0)
            return
        result = call()
        hold.status = "voided"
        self.release(hold, 0)
        expired = self.expire(self.lots_of(hold.member))
        event("void" + (", release expired" if expired else ""))
        assert result["balance"] == self.balance_now(hold.member)
        self.expect_entries(1 + (1 if expired else 0))

    # -- reversals -------------------------------------------------------------------------
    @precondition(lambda self: self.earns)
    @rule(i=st.integers(0, 10**6), how=st.one_of(st.none(), SHARE), elsewhere=st.integers(0, 12))
    def reverse_earn(self, i, how, elsewhere):
        earn = self.earns[i % len(self.earns)]
        if elsewhere < N_PARTNERS - 1:
            return self.reversal_refused(earn.partner, earn.reference, elsewhere + 1)
        lot = self.lots[earn.lot]
        reference = self.ref()
        restore = self.snapshot(self.lots_of(earn.member))
        expired = self.expire([lot])  # expired points are no longer the member's to give back
        remaining = lot.free
        points = None if how is None else self.size(min(remaining, earn.points - earn.reversed), how)
        asked = earn.points - earn.reversed if points is None else points
        released, expired_again = 0, False
        if remaining < asked and self.held(earn.member) and lot.reserved:
            # points a timed-out hold reserved in the earn's lot are the member's again (docs/ledger.md, 7):
            # the member's lapsed holds are released first, then what is due in the earn's lot expires
            released, expired_again = self.release_lapsed(earn.member, [lot])
            remaining = lot.free
        call = lambda: self.network.reverse(earn.partner, reference, earn.reference, points)  # noqa: E731
        if asked <= 0 or asked > remaining:
            self.refused(PointsAlreadySpent, call, remaining=remaining)
            restore()
            self.expect_entries(0)  # nothing written, not even the due expiry or the holds' release
            return
        result = call()
        event("reverse earn " + ("full" if asked == earn.points else "partial") + (" after expiry" if expired else "")
              + (" after a hold's release" if released else ""))
        lot.remaining -= asked
        lot.reversed += asked
        earn.reversed += asked
        assert result["reversible_remaining"] == remaining - asked
        assert result["balance"] == self.balance_now(earn.member)
        self.expect_entries(1 + (1 if expired else 0) + released + (1 if expired_again else 0))

    @precondition(lambda self: self.spends)
    @rule(i=st.integers(0, 10**6), how=st.one_of(st.none(), SHARE), elsewhere=st.integers(0, 12))
    def reverse_spend(self, i, how, elsewhere):
        spend = self.spends[i % len(self.spends)]
        if elsewhere < N_PARTNERS - 1:
            return self.reversal_refused(spend.partner, spend.reference, elsewhere + 1)
        reference = self.ref()
        remaining = spend.returnable
        points = None if how is None else self.size(remaining, how)
        asked = remaining if points is None else points
        call = lambda: self.network.reverse(spend.partner, reference, spend.reference, points)  # noqa: E731
        if asked == 0 or asked > remaining:
            self.refused(ReversalExceedsRemaining, call, remaining=remaining)
            self.expect_entries(0)
            return
        plan, left = [], asked
        for item in reversed(spend.taken):  # reverse consumption order
            give = min(item[1], left)
            if give:
                plan.append((item, give))
                left -= give
        # What is left of a due lot expires first; only the returned points get the grace.
        expired = self.expire([self.lots[item[0]] for item, _ in plan])
        result = call()
        event(f"reverse {spend.kind} " + ("rest" if asked == remaining else "partial"))
        for item, give in plan:
            lot = self.lots[item[0]]
            lot.remaining += give
            if lot.expires_at <= self.now:
                event("returned into an expired lot (grace)")
                lot.expires_at = max(lot.expires_at, self.now + GRACE)
            item[1] -= give
            self.redeem(spend.partner, lot, -give)
        assert result["reversible_remaining"] == remaining - asked
        assert result["balance"] == self.balance_now(spend.member)
        self.expect_entries(1 + (1 if expired else 0))

    def reversal_refused(self, partner: str, reference: str, shift: int) -> None:
        """Another partner's reference is unknown here: refused, nothing written."""
        elsewhere = self.partners[(self.partners.index(partner) + shift) % N_PARTNERS]
        self.refused(UnknownReference, lambda: self.network.reverse(elsewhere, self.ref(), reference, 1))
        self.expect_entries(0)

    # -- time and jobs -----------------------------------------------------------------------
    @rule(delta=st.sampled_from([timedelta(seconds=1), timedelta(minutes=10), timedelta(minutes=16),
                                 timedelta(days=1), timedelta(days=100), timedelta(days=200), timedelta(days=364),
                                 "to 5 minutes before the next expiry", "to the next expiry", "a year, jobs run"]))
    def advance(self, delta):
        """Time passes without any job running (due lots and timed-out holds wait for lazy expiry or a job);
        or it jumps to just before / exactly at the next lot expiry; or a year passes and the jobs run."""
        event(f"advance {delta}")
        if delta == "a year, jobs run":
            self.time_passes()
            return
        if isinstance(delta, str):
            future = [lot.expires_at for lot in self.lots.values() if lot.remaining and lot.expires_at > self.now]
            if not future:
                return
            target = min(future) - (timedelta(minutes=5) if delta.startswith("to 5") else timedelta(0))
            delta = max(timedelta(0), target - self.now)
        self.clock.advance(seconds=delta.total_seconds())

    @rule()
    def expire_holds(self):
        event("expire_holds job")
        due = [h for h in self.holds if h.status == "open" and h.expires_at <= self.now]
        for hold in due:
            hold.status = "expired"
            self.release(hold, 0)
        members = {hold.member for hold in due}
        expired = [self.expire(self.lots_of(member)) for member in sorted(members)]
        assert self.network.expire_holds() == len(due)
        self.expect_entries(len(due) + sum(1 for points in expired if points))

    @rule()
    def expire_lots(self):
        event("expire_lots job")
        by_member = {member: self.expire(self.lots_of(member)) for member in self.members}
        assert self.network.expire_lots() == sum(by_member.values())
        self.expect_entries(sum(1 for points in by_member.values() if points))

    def time_passes(self):
        """A year goes by: every hold times out and every lot expires (the jobs run)."""
        self.clock.advance(days=367)  # past any default lot lifetime (365 days or 12 months)
        self.expire_holds()
        self.expire_lots()
        for member in self.members:
            assert self.balance(member) == {"available": 0, "held": 0}

    # -- invariants --------------------------------------------------------------------------
    @invariant()
    def balances_and_lots_match_the_model(self):
        balances = self.network.tx(lambda tx: [member_balance(tx, m, with_lots=True) for m in self.members],
                                   readonly=True)
        for member, balance in zip(self.members, balances):
            assert {"available": balance["available"], "held": balance["held"]} == self.balance(member), member
            stored = {lot["lot_id"]: (lot["remaining"], lot["reserved"], lot["expires_at"]) for lot in balance["lots"]}
            model = {lot.id: (lot.remaining, lot.reserved, lot.expires_at.isoformat())
                     for lot in self.lots_of(member) if lot.remaining > 0}
            assert stored == model, member

    @invariant()
    def ledger_verifies(self):
        verify_ok(self.network)

    @invariant()
    def money_is_exact(self):
        rows = self.network.tx(lambda tx: tx.session.execute(select(
            ObligationLine.id, ObligationLine.payer, ObligationLine.payee, ObligationLine.kind,
            ObligationLine.points, ObligationLine.amount_micro, ObligationLine.lot_id,
            ObligationLine.original_line_id)).all(), readonly=True)
        for row in rows:
            assert row.payer != row.payee, row
        # The whole database nets to exactly zero.
        sums = bilateral_sums((r.payer, r.payee, r.kind, r.amount_micro) for r in rows)
        assert sum(net_positions(sums).values()) == 0
        originals = {r.id: r for r in rows if r.original_line_id is None}
        for r in originals.values():
            assert r.points > 0 and r.amount_micro == self.expected_amount(r), r
        reversed_by: dict[str, list[int]] = {}
        for r in rows:
            if r.original_line_id is not None:
                o = originals[r.original_line_id]
                assert (r.payer, r.payee, r.kind, r.lot_id) == (o.payer, o.payee, o.kind, o.lot_id)
                assert r.points < 0
                done = reversed_by.setdefault(o.id, [0, 0])
                done[0] -= r.points
                done[1] -= r.amount_micro
        for line_id, (points, amount) in reversed_by.items():
            o = originals[line_id]
            assert points <= o.points, o
            assert amount == prorate(o.amount_micro, points, o.points), (o, points, amount)
        # Per lot, the net points of each kind of line follow the model.
        actual: dict[tuple, int] = {}
        for r in rows:
            key = (r.lot_id, r.kind, r.payer, r.payee)
            actual[key] = actual.get(key, 0) + r.points
        assert {k: v for k, v in actual.items() if v} == self.expected_line_points()

    def expected_amount(self, r) -> int:
        if r.kind == "issuance_fee":
            return r.points * self.terms[r.payer].fee
        if r.kind == "prepaid_funding":
            return r.points * self.terms[r.payer].pv
        if r.kind == "redemption":
            return r.points * self.terms[r.payee].pv
        if r.kind == "redemption_fee":
            return apply_rate_ppm(r.points * self.terms[r.payer].pv, self.terms[r.payer].red_ppm)
        if r.kind == "breakage_refund":
            value = r.points * self.terms[r.payee].pv
            return value - apply_rate_ppm(value, self.terms[r.payee].brk_ppm)
        raise AssertionError(f"unexpected line kind {r.kind}")

    def expected_line_points(self) -> dict[tuple, int]:
        expected: dict[tuple, int] = {}

        def add(key, points):
            if points:
                expected[key] = expected.get(key, 0) + points

        for lot in self.lots.values():
            if lot.funder is None:
                continue
            terms = self.terms[lot.funder]
            issued = lot.points - lot.reversed
            if terms.fee:
                add((lot.id, "issuance_fee", lot.funder, NETWORK), issued)
            if lot.billing == "prepaid":
                add((lot.id, "prepaid_funding", lot.funder, NETWORK), issued)
                add((lot.id, "breakage_refund", NETWORK, lot.funder), lot.expired)
        for (lot_id, redeemer), points in self.redeemed.items():
            lot = self.lots[lot_id]
            payer = lot.funder if lot.billing == "postpaid" else NETWORK
            add((lot_id, "redemption", payer, redeemer), points)
            if self.terms[redeemer].red_ppm:
                add((lot_id, "redemption_fee", redeemer, NETWORK), points)
        return {k: v for k, v in expected.items() if v}


def test_ledger_state_machine(template_db, tmp_path, monkeypatch):
    # Spends read a member's first lots and the rest only when those fall short: with pages of two
    # lots, most spends of the machine's members take that path (at the default, almost none).
    monkeypatch.setattr(state, "PAGE", 2)
    LedgerMachine.context = (template_db, tmp_path, Settings(data_dir=tmp_path / "data",
                                                               expiry_policy="days:365"))
    try:
        LedgerMachine.TestCase.settings = hsettings(
            max_examples=int(os.environ.get("POINTSNET_MACHINE_EXAMPLES", "20" if PG_URL else "25")),
            stateful_step_count=40, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        LedgerMachine.TestCase().runTest()
    finally:
        LedgerMachine.context = None
