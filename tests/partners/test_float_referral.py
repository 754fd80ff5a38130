"""A prepaid float is never taken below minus its overdraft (docs/operations.md "Prepaid float";
docs/ledger.md decision 14) — not by the partner-funded referral bonus an earn posts either: the
earn is checked against the float for its own points and the bonus it pays, before anything is
written, by the earn, its quote and a batch alike."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from shared.alerts import list_alerts
from shared.errors import PointsnetError
from shared.ledger.events import Event
from shared.ledger.posting import quote_earn
from shared.models import Entry, ReferralBonus
from shared.partners.limits import FloatExhausted, float_status, record_topup, set_limits
from shared.rules.store import set_rules
from tests.factories import make_partner, verify_ok

PREPAID = dict(billing="prepaid", point_value="1", issuance_fee="0", redemption_fee_rate="0")
MICRO = 1_000_000


def alerts(network, kind) -> list[dict]:
    return [a for a in network.tx(list_alerts, readonly=True) if a["kind"] == kind]


def status(network, partner) -> dict:
    return network.tx(lambda tx: float_status(tx, partner), readonly=True)


def count(network, model, *where) -> int:
    return network.tx(lambda tx: tx.session.execute(select(func.count()).select_from(model).where(*where))
                      .scalar_one(), readonly=True)


def prepaid_with_referral(network, *, topup: int, overdraft: int = 0, funded_by: str = "partner"):
    """A prepaid partner with a float of ``topup`` fen, a referral programme paying 500 points, and a
    referee whose first earn pays its referrer's bonus."""
    partner = make_partner(network, **PREPAID)
    network.tx(lambda tx: set_limits(tx, partner, float_overdraft_minor=overdraft))
    network.tx(lambda tx: record_topup(tx, partner, topup, "BANK-1"))
    network.tx(lambda tx: set_rules(tx, partner, f"referral: {{bonus_points: 500, funded_by: {funded_by}}}\n"))
    referrer = network.enrol(partner, phone="+8613900001111")["member_id"]
    referee = network.enrol(partner, phone="+8613900002222", referrer_member_id=referrer)["member_id"]
    return partner, referrer, referee


def test_a_partner_funded_referral_bonus_cannot_overdraw_the_float(network):
    """(Reviewer's case.) 100 fen of float: the earn of 100 points fits, with its 500-point bonus it
    needs 600 fen; the float may go no lower than minus the overdraft (0)."""
    partner = make_partner(network, **PREPAID)
    network.tx(lambda tx: set_limits(tx, partner, float_overdraft_minor=0))
    network.tx(lambda tx: record_topup(tx, partner, 100, "BANK-1"))
    network.tx(lambda tx: set_rules(tx, partner, "referral: {bonus_points: 500, funded_by: partner}\n"))
    referrer = network.enrol(partner, phone="+8613900001111")["member_id"]
    referee = network.enrol(partner, phone="+8613900002222", referrer_member_id=referrer)["member_id"]
    try:
        network.earn(partner, referee, "e1", points=100)
    except FloatExhausted:
        pass  # refused as any issuance the float cannot fund: fine
    assert status(network, partner)["balance_micro"] >= 0


def test_an_earn_whose_bonus_the_float_cannot_fund_is_refused_writes_nothing_and_alerts(network):
    partner, referrer, referee = prepaid_with_referral(network, topup=100)
    with pytest.raises(FloatExhausted) as refused:
        network.earn(partner, referee, "e1", points=100)
    assert refused.value.code == "float_exhausted" and refused.value.status == 409
    problem = refused.value.to_problem()
    assert problem["needed_micro"] == 600 * MICRO and problem["headroom_micro"] == 100 * MICRO
    assert problem["referral_bonus_micro"] == 500 * MICRO
    assert "referral bonus" in str(refused.value)
    assert count(network, Entry, Entry.partner_id == partner, Entry.kind.in_(("earn", "bonus"))) == 0
    assert network.balance(referee)["available"] == 0 and network.balance(referrer)["available"] == 0
    assert status(network, partner)["balance_micro"] == 100 * MICRO
    [alert] = alerts(network, "float_exhausted")
    assert alert["detail"]["needed_micro"] == 600 * MICRO
    # the referral stays pending: once the float holds both, the next earn pays the bonus
    network.tx(lambda tx: record_topup(tx, partner, 500, "BANK-2"))
    earned = network.earn(partner, referee, "e2", points=100)
    assert earned["referral_bonus"]["points"] == 500
    assert status(network, partner)["balance_micro"] == 0
    assert network.balance(referrer)["available"] == 500
    verify_ok(network)


def test_the_quote_of_such_an_earn_is_refused_as_the_earn_is(network):
    """The quote runs the earn's checks read only: the same refusal, the same figures, no alert."""
    partner, _, referee = prepaid_with_referral(network, topup=599)
    event = Event("earn", "e1", referee, points=100)
    with pytest.raises(PointsnetError) as quote:
        network.tx(lambda tx: quote_earn(tx, partner, event), readonly=True)
    assert alerts(network, "float_exhausted") == []
    [earn] = network.post(partner, [event])
    assert isinstance(earn, PointsnetError)
    assert quote.value.code == earn.code == "float_exhausted"
    assert quote.value.to_problem() == earn.to_problem()
    # one fen more and both agree the other way
    network.tx(lambda tx: record_topup(tx, partner, 1, "BANK-2"))
    assert network.tx(lambda tx: quote_earn(tx, partner, event), readonly=True)["points"] == 100
    assert network.earn(partner, referee, "e1", points=100)["referral_bonus"]["points"] == 500


def test_a_bonus_that_takes_the_float_into_its_overdraft_posts_and_raises_float_in_overdraft(network):
    """100 fen of float and 500 of overdraft: the earn and its bonus (600) fit exactly; the bonus
    takes the float below zero, which raises float_in_overdraft as any prepaid issuance does."""
    partner, referrer, referee = prepaid_with_referral(network, topup=100, overdraft=500)
    earned = network.earn(partner, referee, "e1", points=100)
    assert earned["referral_bonus"]["points"] == 500
    assert status(network, partner)["balance_micro"] == -500 * MICRO
    assert status(network, partner)["headroom_micro"] == 0
    [alert] = alerts(network, "float_in_overdraft")
    assert alert["detail"]["balance_micro"] == -500 * MICRO
    assert alerts(network, "float_exhausted") == []
    with pytest.raises(FloatExhausted):
        network.earn(partner, referee, "e2", points=1)
    verify_ok(network)


def test_a_network_funded_bonus_draws_nothing_from_the_float(network):
    partner, referrer, referee = prepaid_with_referral(network, topup=100, funded_by="network")
    earned = network.earn(partner, referee, "e1", points=100)
    assert earned["referral_bonus"] == {"transaction_id": earned["referral_bonus"]["transaction_id"],
                                        "points": 500, "funded_by": "network"}
    assert status(network, partner)["balance_micro"] == 0
    verify_ok(network)


def test_earns_of_one_batch_draw_their_bonuses_from_one_float(network):
    """700 fen of float: a plain earn of 100, then the referee's earn of 100 with its 500-point bonus
    (600, exactly what is left), then an earn of 1 that finds nothing left."""
    partner, referrer, referee = prepaid_with_referral(network, topup=700)
    other = network.enrol(partner, phone="+8613900003333")["member_id"]
    outcomes = network.post(partner, [Event("earn", "a", other, points=100), Event("earn", "b", referee, points=100),
                                      Event("earn", "c", other, points=1)])
    assert outcomes[0]["points"] == 100 and outcomes[1]["referral_bonus"]["points"] == 500
    assert isinstance(outcomes[2], FloatExhausted)
    assert status(network, partner)["balance_micro"] == 0
    verify_ok(network)


def test_in_a_batch_a_bonus_the_float_cannot_fund_refuses_its_earn_only(network):
    """601 fen of float: the plain earn of 100 leaves 501, so the referee's earn of 100 with its bonus
    (600) is refused and its referral stays pending; a later earn of the referee in the same batch that
    fits with the bonus (1 + 500) pays it, exactly once."""
    partner, referrer, referee = prepaid_with_referral(network, topup=601)
    other = network.enrol(partner, phone="+8613900003333")["member_id"]
    outcomes = network.post(partner, [Event("earn", "a", other, points=100), Event("earn", "b", referee, points=100),
                                      Event("earn", "c", referee, points=1)])
    assert outcomes[0]["points"] == 100
    assert isinstance(outcomes[1], FloatExhausted) and outcomes[1].to_problem()["needed_micro"] == 600 * MICRO
    assert outcomes[2]["referral_bonus"]["points"] == 500
    assert status(network, partner)["balance_micro"] == 0
    assert network.balance(referrer)["available"] == 500
    assert count(network, ReferralBonus) == 1
    verify_ok(network)
