"""Property-based tests of the pure posting maths in ``shared.ledger.rules``, ``shared.money`` and netting.

The design's rules, checked on random inputs: lots are consumed earliest-expiry first
(tie: oldest first, then id) and never beyond their free points; returns go back in
reverse consumption order and conserve points; reversal lines applied in random
partial steps sum to exactly the original line; a redemption never has payer ==
payee and pays nothing where the redeemer funded the lot; netting sums to zero.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import assume, given, settings, strategies as st

from shared.ledger.rules import (
    NETWORK, Line, LotState, Terms, breakage_lines, issuance_lines, redemption_lines, return_to_lots,
    reversal_line, take_from_lots,
)
from shared.money import MICRO, apply_rate_ppm, prorate, round_micro_to_minor
from shared.settlement.netting import bilateral_sums, net_positions

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
PARTNERS = ["ptn_a", "ptn_b", "ptn_c"]

RULES = settings(max_examples=150, deadline=None)


# -- strategies ---------------------------------------------------------------------------


@st.composite
def lot_states(draw, member_id: str = "mem_1", index: int | None = None) -> LotState:
    """A lot with few distinct expiry and issue instants, so ties are common."""
    points = draw(st.integers(1, 1_000))
    remaining = draw(st.integers(0, points))
    reserved = draw(st.integers(0, remaining))
    funder = draw(st.sampled_from(PARTNERS + [None]))
    billing = "network" if funder is None else draw(st.sampled_from(["postpaid", "prepaid"]))
    issued = T0 + timedelta(minutes=draw(st.integers(0, 3)))
    expires = T0 + timedelta(days=draw(st.integers(0, 3)))
    lot_id = f"lot_{draw(st.text(alphabet='0123456789abcdef', min_size=4, max_size=4))}"
    if index is not None:
        lot_id += f"{index:04d}"
    return LotState(lot_id, member_id, "ent_x", funder, billing, None if funder is None else f"ctr_{funder}",
                    points, remaining, reserved, issued, expires)


@st.composite
def lot_lists(draw, max_size: int = 12) -> list[LotState]:
    size = draw(st.integers(0, max_size))
    lots = [draw(lot_states(index=i)) for i in range(size)]
    assume(len({lot.id for lot in lots}) == len(lots))
    return lots


@st.composite
def terms(draw, partner_id: str | None = None) -> Terms:
    partner_id = partner_id or draw(st.sampled_from(PARTNERS))
    return Terms(
        contract_id=f"ctr_{partner_id}", partner_id=partner_id,
        billing=draw(st.sampled_from(["postpaid", "prepaid"])),
        point_value_micro=draw(st.integers(0, 5 * MICRO)),
        issuance_fee_micro=draw(st.integers(0, MICRO)),
        redemption_fee_ppm=draw(st.integers(0, 1_000_000)),
        breakage_share_ppm=draw(st.integers(0, 1_000_000)),
        base_rate_micro=draw(st.integers(0, 10 * MICRO)),
    )


def half_even(numerator: int, denominator: int) -> int:
    return int((Decimal(numerator) / Decimal(denominator)).to_integral_value(rounding=ROUND_HALF_EVEN))


# -- take_from_lots ------------------------------------------------------------------------


@RULES
@given(lots=lot_lists(), points=st.integers(1, 5_000))
def test_take_from_lots_earliest_expiry_then_oldest_then_id(lots, points):
    before = [(lot.id, lot.remaining, lot.reserved) for lot in lots]
    free_total = sum(lot.free for lot in lots)
    plan = take_from_lots(lots, points)
    assert [(lot.id, lot.remaining, lot.reserved) for lot in lots] == before, "planning must not change lots"
    if points > free_total:
        assert plan is None
        return
    assert plan is not None
    assert sum(take for _, take in plan) == points
    taken_ids = [lot.id for lot, _ in plan]
    assert len(set(taken_ids)) == len(taken_ids), "a lot is taken at most once per plan"
    for lot, take in plan:
        assert 0 < take <= lot.free, "never more than a lot's free (unreserved) points"
    # The plan is exactly a prefix of the free lots in (expires_at, issued_at, id) order...
    order = sorted((lot for lot in lots if lot.free > 0), key=lambda lot: (lot.expires_at, lot.issued_at, lot.id))
    assert taken_ids == [lot.id for lot in order[:len(plan)]]
    # ...and every lot but the last is drained.
    for lot, take in plan[:-1]:
        assert take == lot.free
    # No lot that comes later in the order is touched while an earlier one still has free points.
    last_lot, last_take = plan[-1]
    assert last_take <= last_lot.free


@RULES
@given(lots=lot_lists(), points=st.integers(1, 5_000))
def test_take_from_lots_does_not_depend_on_input_order(lots, points):
    forward = take_from_lots(lots, points)
    backward = take_from_lots(list(reversed(lots)), points)
    as_ids = lambda plan: None if plan is None else [(lot.id, take) for lot, take in plan]  # noqa: E731
    assert as_ids(forward) == as_ids(backward)


def test_take_from_lots_worked_example_order():
    """The worked example: L1 (earlier expiry) is drained before L2."""
    l1 = LotState("lot_b", "m", "e1", "coffee", "postpaid", "c1", 500, 500, 0, T0, T0 + timedelta(days=365))
    l2 = LotState("lot_a", "m", "e2", "air", "postpaid", "c2", 300, 300, 0, T0 + timedelta(minutes=5),
                  T0 + timedelta(days=365, minutes=5))
    plan = take_from_lots([l2, l1], 600)
    assert [(lot.id, take) for lot, take in plan] == [("lot_b", 500), ("lot_a", 100)]
    # Same expiry: the oldest first, whatever the ids say.
    l3 = LotState("lot_a", "m", "e3", "air", "postpaid", "c2", 10, 10, 0, T0 + timedelta(minutes=1), T0)
    l4 = LotState("lot_z", "m", "e4", "air", "postpaid", "c2", 10, 10, 0, T0, T0)
    assert [lot.id for lot, _ in take_from_lots([l3, l4], 15)] == ["lot_z", "lot_a"]


# -- return_to_lots --------------------------------------------------------------------------


@st.composite
def taken_lists(draw):
    size = draw(st.integers(0, 10))
    return [(f"lot_{i:02d}", draw(st.integers(0, 500))) for i in range(size)]


@RULES
@given(taken=taken_lists(), data=st.data())
def test_return_to_lots_reverse_order_and_conserves(taken, data):
    total = sum(points for _, points in taken)
    points = data.draw(st.integers(0, total + 50))
    if points > total:
        with pytest.raises(ValueError):
            return_to_lots(taken, points)
        return
    plan = return_to_lots(taken, points)
    assert sum(give for _, give in plan) == points
    position = {lot_id: i for i, (lot_id, _) in enumerate(taken)}
    returnable = dict(taken)
    indices = [position[lot_id] for lot_id, _ in plan]
    assert indices == sorted(indices, reverse=True), "returns go in reverse consumption order"
    assert len(set(indices)) == len(indices)
    for lot_id, give in plan:
        assert 0 < give <= returnable[lot_id]
    # Greedy from the back: every non-empty lot after the last one touched is drained by the plan.
    if plan:
        lowest = indices[-1]
        for lot_id, returnable_points in taken[lowest + 1:]:
            assert dict(plan).get(lot_id, 0) == returnable_points


@RULES
@given(taken=taken_lists(), data=st.data())
def test_return_to_lots_in_partial_steps_conserves_and_ends_empty(taken, data):
    """Reversing a burn in several partial steps returns exactly what was taken, lot by lot."""
    state = list(taken)
    returned: dict[str, int] = {}
    left = sum(points for _, points in state)
    while left:
        step = data.draw(st.integers(1, left))
        plan = return_to_lots(state, step)
        assert sum(give for _, give in plan) == step
        gives = dict(plan)
        state = [(lot_id, points - gives.get(lot_id, 0)) for lot_id, points in state]
        assert all(points >= 0 for _, points in state)
        for lot_id, give in plan:
            returned[lot_id] = returned.get(lot_id, 0) + give
        left -= step
    assert returned == {lot_id: points for lot_id, points in taken if points}
    assert all(points == 0 for _, points in state)
    with pytest.raises(ValueError):
        return_to_lots(state, 1)


# -- reversal_line ---------------------------------------------------------------------------


@st.composite
def partial_steps(draw, total: int) -> list[int]:
    """``total`` split into at most 8 random positive parts (the last takes the rest)."""
    steps, left = [], total
    while left:
        step = left if len(steps) == 7 else draw(st.integers(1, left))
        steps.append(step)
        left -= step
    return steps


@RULES
@given(points=st.integers(1, 10_000), amount=st.integers(-10**12, 10**12), data=st.data())
def test_reversal_line_in_partial_steps_sums_to_exactly_the_original(points, amount, data):
    original = Line("ptn_a", "ptn_b", "redemption", points, amount, "ctr_b", "lot_1")
    steps = data.draw(partial_steps(points))
    done_points, done_amount = 0, 0
    for step in steps:
        line = reversal_line(original, "obl_1", (done_points, done_amount), step)
        assert line is not None
        assert (line.payer, line.payee, line.kind, line.contract_id, line.lot_id, line.original_line_id) == (
            "ptn_a", "ptn_b", "redemption", "ctr_b", "lot_1", "obl_1")
        assert line.points == -step
        done_points -= line.points
        done_amount -= line.amount_micro
        # Cumulative amounts are the exact pro-rata share (rounded once, half-even).
        assert done_amount == half_even(amount * done_points, points)
        assert done_amount == prorate(amount, done_points, points)
        # Every step moves money in the opposite direction of the original (or not at all).
        assert line.amount_micro * amount <= 0
    assert done_points == points
    assert done_amount == amount, "a line reversed in parts sums to exactly the original"


@RULES
@given(points=st.integers(1, 1_000), amount=st.integers(0, 10**9), before=st.integers(0, 1_000))
def test_reversal_line_of_zero_points_is_nothing(points, amount, before):
    before = min(before, points)
    original = Line("ptn_a", NETWORK, "issuance_fee", points, amount, "ctr_a", "lot_1")
    assert reversal_line(original, "obl_1", (before, prorate(amount, before, points)), 0) is None


# -- issuance, redemption and breakage lines -------------------------------------------------


@RULES
@given(lot=lot_states(), redeemer=terms(), data=st.data())
def test_redemption_lines_payer_never_payee_and_none_at_the_funder(lot, redeemer, data):
    points = data.draw(st.integers(1, 10_000))
    lines = redemption_lines(lot, points, redeemer)
    for line in lines:
        assert line.payer != line.payee, line
        assert line.points == points
        assert line.lot_id == lot.id
        assert line.contract_id == redeemer.contract_id
        assert line.amount_micro > 0
    if lot.funder_partner_id == redeemer.partner_id:
        assert lines == [], "points redeemed where they were funded move no money"
        return
    reimbursement = points * redeemer.point_value_micro
    if reimbursement == 0:
        assert lines == []
        return
    [redemption, *rest] = lines
    assert redemption.kind == "redemption"
    assert redemption.payee == redeemer.partner_id
    assert redemption.payer == (lot.funder_partner_id if lot.billing == "postpaid" else NETWORK)
    assert redemption.amount_micro == reimbursement
    fee = half_even(reimbursement * redeemer.redemption_fee_ppm, 1_000_000)
    if fee:
        assert [(l.kind, l.payer, l.payee, l.amount_micro) for l in rest] == [
            ("redemption_fee", redeemer.partner_id, NETWORK, fee)]
    else:
        assert rest == []


@RULES
@given(lot=lot_states(), data=st.data())
def test_redemption_at_the_funder_pays_nothing_whatever_the_terms(lot, data):
    assume(lot.funder_partner_id is not None)
    redeemer = data.draw(terms(partner_id=lot.funder_partner_id))
    assert redemption_lines(lot, data.draw(st.integers(1, 10_000)), redeemer) == []


@RULES
@given(lot=lot_states(), data=st.data())
def test_issuance_lines_only_for_partner_funded_lots(lot, data):
    issuer = data.draw(terms(partner_id=lot.funder_partner_id or "ptn_a"))
    lines = issuance_lines(lot, issuer)
    if lot.billing == "network":
        assert lines == []
        return
    expected = []
    if issuer.issuance_fee_micro:
        expected.append(("issuance_fee", lot.points * issuer.issuance_fee_micro))
    if lot.billing == "prepaid" and issuer.point_value_micro:
        expected.append(("prepaid_funding", lot.points * issuer.point_value_micro))
    assert [(l.kind, l.amount_micro) for l in lines] == expected
    for line in lines:
        assert (line.payer, line.payee, line.points) == (lot.funder_partner_id, NETWORK, lot.points)
        assert line.payer != line.payee


@RULES
@given(lot=lot_states(), points=st.integers(1, 10_000), data=st.data())
def test_breakage_refund_is_value_less_the_networks_share(lot, points, data):
    lot_terms = data.draw(terms(partner_id=lot.funder_partner_id or "ptn_a"))
    lines = breakage_lines(lot, points, lot_terms)
    if lot.billing != "prepaid":
        assert lines == [], "postpaid and network-funded expiry moves no money"
        return
    value = points * lot_terms.point_value_micro
    share = half_even(value * lot_terms.breakage_share_ppm, 1_000_000)
    if value - share == 0:
        assert lines == []
        return
    [line] = lines
    assert (line.kind, line.payer, line.payee, line.points) == ("breakage_refund", NETWORK, lot.funder_partner_id,
                                                                points)
    assert line.amount_micro == value - share
    assert 0 < line.amount_micro <= value


# -- money helpers and netting ---------------------------------------------------------------


@RULES
@given(amount=st.integers(-10**15, 10**15), rate=st.integers(0, 1_000_000))
def test_apply_rate_is_half_even_exact(amount, rate):
    assert apply_rate_ppm(amount, rate) == half_even(amount * rate, 1_000_000)


PARTIES = PARTNERS + [NETWORK, "ptn_d"]
KINDS = ["issuance_fee", "prepaid_funding", "redemption", "redemption_fee", "breakage_refund"]


@st.composite
def obligation_lines(draw):
    size = draw(st.integers(0, 30))
    lines = []
    for _ in range(size):
        payer = draw(st.sampled_from(PARTIES))
        payee = draw(st.sampled_from([p for p in PARTIES if p != payer]))
        lines.append((payer, payee, draw(st.sampled_from(KINDS)), draw(st.integers(-10**10, 10**10))))
    return lines


@RULES
@given(lines=obligation_lines())
def test_netting_random_lines_sums_to_zero(lines):
    sums = bilateral_sums(lines)
    positions = net_positions(sums)
    assert sum(positions.values()) == 0
    # Each (payer, payee, kind) sum is rounded once, from the exact micro total.
    exact: dict[tuple[str, str, str], int] = {}
    for payer, payee, kind, amount in lines:
        exact[(payer, payee, kind)] = exact.get((payer, payee, kind), 0) + amount
    assert sums == {key: round_micro_to_minor(total) for key, total in exact.items()}
    for key, total in exact.items():
        assert sums[key] == half_even(total, MICRO)
    # A party's position is what it receives less what it pays, from the rounded sums.
    for party in positions:
        assert positions[party] == (sum(v for (_, payee, _), v in sums.items() if payee == party)
                                    - sum(v for (payer, _, _), v in sums.items() if payer == party))


@RULES
@given(lines=obligation_lines(), data=st.data())
def test_netting_a_line_and_its_full_reversal_in_parts_is_neutral(lines, data):
    """Adding a line and its reversal (in random partial steps) changes no exact bilateral sum."""
    points = data.draw(st.integers(1, 1_000))
    amount = data.draw(st.integers(0, 10**10))
    original = Line("ptn_a", "ptn_b", "redemption", points, amount, "ctr_b", "lot_1")
    extra = [(original.payer, original.payee, original.kind, original.amount_micro)]
    done = (0, 0)
    for step in data.draw(partial_steps(points)):
        line = reversal_line(original, "obl_1", done, step)
        extra.append((line.payer, line.payee, line.kind, line.amount_micro))
        done = (done[0] - line.points, done[1] - line.amount_micro)
    with_pair = bilateral_sums(lines + extra)
    without = bilateral_sums(lines)
    key = ("ptn_a", "ptn_b", "redemption")
    assert with_pair.get(key, 0) == without.get(key, 0)
    assert sum(net_positions(with_pair).values()) == 0
