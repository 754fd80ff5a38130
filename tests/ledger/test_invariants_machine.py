"""A Hypothesis state machine over random earn/burn/hold/capture/void/reverse/expire sequences.

A deliberately simple model (per member: available and held points; per earn: what
is still unspent; per burn: what can still return) predicts every outcome, and after
every step the whole ledger must verify and obligation lines must net to zero.
"""

import itertools

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import func, select

from shared.errors import (
    CaptureExceedsHold, HoldNotOpen, InsufficientPoints, PointsAlreadySpent, ReversalExceedsRemaining,
)
from shared.models import Lot, ObligationLine, Transfer
from shared.settlement.netting import bilateral_sums, net_positions
from tests.factories import make_member, make_partner, verify_ok

_run = itertools.count()


def ledger_machine(network, clock):
    class LedgerMachine(RuleBasedStateMachine):
        @initialize()
        def setup(self):
            n = next(_run)
            self.partners = [
                make_partner(network, f"Post{n}", billing="postpaid", issuance_fee="0.1", redemption_fee_rate="0.05"),
                make_partner(network, f"Pre{n}", billing="prepaid", point_value="1.2", issuance_fee="0.05",
                             redemption_fee_rate="0.03", breakage_share="0.3"),
                make_partner(network, f"Odd{n}", billing="postpaid", point_value="0.7", redemption_fee_rate="0.071"),
            ]
            self.members = [make_member(network, self.partners[0], also_linked_to=tuple(self.partners[1:]))
                            for _ in range(3)]
            self.available = {m: 0 for m in self.members}
            self.held = {m: 0 for m in self.members}
            self.lots = {m: [] for m in self.members}  # [expires_at, free points] per lot, for expiry
            self.earns = []  # (partner, reference, member)
            self.burns = []  # (partner, reference, member, returnable)
            self.holds = []  # (partner, hold_id, member, points)
            self.counter = 0

        def ref(self):
            self.counter += 1
            return f"r{self.counter}"

        @rule(p=st.integers(0, 2), m=st.integers(0, 2), points=st.integers(1, 500))
        def earn(self, p, m, points):
            member = self.members[m]
            reference = self.ref()
            network.earn(self.partners[p], member, reference, points=points)
            self.available[member] += points
            self.earns.append((p, reference, member))

        @rule(m=st.integers(0, 2), points=st.integers(1, 300))
        def bonus(self, m, points):
            member = self.members[m]
            network.grant_bonus(member, points, reason="campaign")
            self.available[member] += points

        @rule(p=st.integers(0, 2), m=st.integers(0, 2), points=st.integers(1, 800))
        def burn(self, p, m, points):
            member = self.members[m]
            reference = self.ref()
            if points > self.available[member]:
                try:
                    network.burn(self.partners[p], member, reference, points)
                except InsufficientPoints as refusal:
                    assert refusal.extra["available"] == self.available[member]
                    return
                raise AssertionError("a burn beyond the balance was accepted")
            network.burn(self.partners[p], member, reference, points)
            self.available[member] -= points
            self.burns.append([p, reference, member, points])

        @rule(p=st.integers(0, 2), m=st.integers(0, 2), points=st.integers(1, 400))
        def hold(self, p, m, points):
            member = self.members[m]
            if points > self.available[member]:
                try:
                    network.hold(self.partners[p], member, self.ref(), points)
                except InsufficientPoints:
                    return
                raise AssertionError("a hold beyond the balance was accepted")
            result = network.hold(self.partners[p], member, self.ref(), points)
            self.available[member] -= points
            self.held[member] += points
            self.holds.append((p, result["hold_id"], member, points))

        @precondition(lambda self: self.holds)
        @rule(i=st.integers(0, 50), fraction=st.sampled_from([None, 0.25, 0.5, 1.0, 1.5]))
        def capture(self, i, fraction):
            p, hold_id, member, points = self.holds.pop(i % len(self.holds))
            capture = None if fraction is None else max(1, int(points * fraction))
            reference = self.ref()
            if capture is not None and capture > points:
                try:
                    network.capture(self.partners[p], hold_id, capture, reference=reference)
                except CaptureExceedsHold:
                    self.holds.append((p, hold_id, member, points))
                    return
                raise AssertionError("a capture above the hold was accepted")
            captured = points if capture is None else capture
            network.capture(self.partners[p], hold_id, capture, reference=reference)
            self.held[member] -= points
            self.available[member] += points - captured
            self.burns.append([p, reference, member, captured])
            try:
                network.capture(self.partners[p], hold_id, 1)
            except HoldNotOpen:
                pass
            else:
                raise AssertionError("a hold was captured twice")

        @precondition(lambda self: self.holds)
        @rule(i=st.integers(0, 50))
        def void(self, i):
            p, hold_id, member, points = self.holds.pop(i % len(self.holds))
            network.void(self.partners[p], hold_id)
            self.held[member] -= points
            self.available[member] += points

        @precondition(lambda self: self.earns)
        @rule(i=st.integers(0, 50), points=st.integers(1, 600))
        def reverse_earn(self, i, points):
            p, reference, member = self.earns[i % len(self.earns)]
            before = network.balance(member)
            try:
                network.reverse(self.partners[p], self.ref(), reference, points)
            except PointsAlreadySpent as refusal:
                assert refusal.extra["remaining"] < points
                assert network.balance(member) == before  # nothing written
                return
            self.available[member] -= points

        @precondition(lambda self: self.burns)
        @rule(i=st.integers(0, 50), points=st.integers(1, 600))
        def reverse_burn(self, i, points):
            entry = self.burns[i % len(self.burns)]
            p, reference, member, returnable = entry
            if points > returnable:
                try:
                    network.reverse(self.partners[p], self.ref(), reference, points)
                except ReversalExceedsRemaining as refusal:
                    assert refusal.extra["remaining"] == returnable
                    return
                raise AssertionError("a reversal beyond what was spent was accepted")
            network.reverse(self.partners[p], self.ref(), reference, points)
            entry[3] -= points
            self.available[member] += points

        @rule(days=st.sampled_from([1, 100, 366]))
        def time_passes(self, days):
            """Holds time out (15 min) and due lots expire; every point that leaves a member is breakage."""
            expired_before = self.expired()
            total_before = sum(self.available.values()) + sum(self.held.values())
            clock.advance(days=days)
            network.expire_holds()
            network.expire_lots()
            for _p, _hold_id, member, points in self.holds:
                self.held[member] -= points
                self.available[member] += points
            self.holds = []
            expired = self.expired() - expired_before
            for member in self.members:
                balance = network.balance(member)
                assert balance["held"] == 0
                assert balance["available"] <= self.available[member]
                self.available[member] = balance["available"]
            assert total_before - sum(self.available.values()) == expired
            due = network.tx(lambda tx: tx.session.execute(select(Lot.id).where(
                Lot.expires_at <= clock.now(), Lot.remaining > Lot.reserved)).all())
            assert due == []

        def expired(self) -> int:
            """Points moved from this example's members to network:expired (breakage)."""
            accounts = [f"member:{m}" for m in self.members]
            return network.tx(lambda tx: tx.session.execute(select(func.coalesce(func.sum(Transfer.points), 0)).where(
                Transfer.debit_account.in_(accounts), Transfer.credit_account == "network:expired")).scalar_one())

        @invariant()
        def balances_match_the_model(self):
            for member in self.members:
                balance = network.balance(member)
                assert (balance["available"], balance["held"]) == (self.available[member], self.held[member])

        @invariant()
        def ledger_verifies_and_money_nets_to_zero(self):
            verify_ok(network)
            lines = network.tx(lambda tx: tx.session.execute(select(
                ObligationLine.payer, ObligationLine.payee, ObligationLine.kind, ObligationLine.amount_micro)).all())
            assert sum(net_positions(bilateral_sums(lines)).values()) == 0

    return LedgerMachine


def test_ledger_state_machine(network, clock):
    machine = ledger_machine(network, clock)
    machine.TestCase.settings = settings(max_examples=20, stateful_step_count=30, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
    machine.TestCase().runTest()
