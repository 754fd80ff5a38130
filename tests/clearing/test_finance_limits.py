"""Finance controls: a prepaid partner's float, a postpaid partner's exposure, a partner's termination."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from shared.alerts import list_alerts
from shared.errors import InvalidAmount, PartnerSuspended
from shared.ledger.cycles import cycle_date_for
from shared.ledger.events import Event
from shared.models import Entry, ObligationLine, Settlement
from shared.money import MAX_MICRO, MICRO
from shared.partners.lifecycle import PartnerTerminated, TerminationConflict, set_status, terminate
from shared.partners.limits import (FloatExhausted, TopupConflict, check_exposure, exposures, float_status,
                                    record_topup, set_limits)
from shared.settlement.files import statement_name
from tests.factories import make_member, make_partner, verify_ok

PREPAID = dict(billing="prepaid", point_value="1", issuance_fee="0", redemption_fee_rate="0")


def entries(network, partner) -> int:
    return network.tx(lambda tx: tx.session.execute(
        select(func.count()).select_from(Entry).where(Entry.partner_id == partner)).scalar_one(), readonly=True)


def alerts(network, kind) -> list[dict]:
    return [a for a in network.tx(list_alerts, readonly=True) if a["kind"] == kind]


@pytest.fixture
def prepaid(network):
    partner = make_partner(network, **PREPAID)
    network.tx(lambda tx: set_limits(tx, partner, float_overdraft_minor=0))
    return partner, make_member(network, partner)


def test_issuance_beyond_the_float_is_refused_posts_nothing_and_alerts(network, prepaid):
    partner, member = prepaid
    with pytest.raises(FloatExhausted) as refused:
        network.earn(partner, member, "e1", points=1)
    assert refused.value.code == "float_exhausted" and refused.value.status == 409
    assert entries(network, partner) == 0 and network.balance(member)["available"] == 0
    [alert] = alerts(network, "float_exhausted")
    assert alert["partner_id"] == partner and alert["detail"]["needed_micro"] == 1_000_000


def test_the_float_is_drawn_exactly_and_reversals_give_it_back(network, prepaid):
    partner, member = prepaid
    status = network.tx(lambda tx: record_topup(tx, partner, 1_000, "BANK-1"))
    assert status["recorded"] and status["balance_micro"] == 1_000 * 1_000_000
    network.earn(partner, member, "e1", points=600)
    with pytest.raises(FloatExhausted):
        network.earn(partner, member, "e2", points=401)
    network.earn(partner, member, "e3", points=400)
    assert network.tx(lambda tx: float_status(tx, partner))["balance_micro"] == 0
    network.reverse(partner, "r1", "e1", points=250)
    assert network.tx(lambda tx: float_status(tx, partner))["headroom_micro"] == 250 * 1_000_000
    network.earn(partner, member, "e4", points=250)
    assert network.balance(member)["available"] == 1_000
    verify_ok(network)


def test_a_top_up_is_recorded_once_per_bank_reference(network, prepaid):
    partner, _ = prepaid
    first = network.tx(lambda tx: record_topup(tx, partner, 500, "BANK-7"))
    again = network.tx(lambda tx: record_topup(tx, partner, 500, "BANK-7"))
    assert again["topup_id"] == first["topup_id"] and not again["recorded"]
    assert again["topups_minor"] == 500
    with pytest.raises(TopupConflict):
        network.tx(lambda tx: record_topup(tx, partner, 501, "BANK-7"))


@pytest.mark.parametrize("limit", ["float_overdraft_minor", "exposure_limit_minor"])
def test_a_top_up_or_limit_is_at_most_what_a_ledger_column_holds(network, prepaid, limit):
    """Top-ups, float overdrafts and exposure limits are at most MAX_MICRO // MICRO minor units (their
    micro-units fit a 64-bit ledger column): more is refused as invalid_amount, not an overflow from
    the database, and nothing changes."""
    partner, _ = prepaid
    most = MAX_MICRO // MICRO
    with pytest.raises(InvalidAmount, match=f"at most {most} minor units") as refused:
        network.tx(lambda tx: record_topup(tx, partner, most + 1, "BANK-1"))
    assert refused.value.code == "invalid_amount" and refused.value.status == 422
    with pytest.raises(InvalidAmount, match=f"{limit} is at most {most} minor units"):
        network.tx(lambda tx: set_limits(tx, partner, **{limit: 10**23}))
    assert network.tx(lambda tx: float_status(tx, partner))["topups_minor"] == 0
    assert network.tx(lambda tx: set_limits(tx, partner, **{limit: most}))[limit] == most
    status = network.tx(lambda tx: record_topup(tx, partner, most, "BANK-1"))
    assert status["recorded"] and status["topups_minor"] == most


def test_an_overdraft_lets_issuance_go_that_far_below_zero_and_alerts_once_in_it(network, prepaid):
    partner, member = prepaid
    network.tx(lambda tx: set_limits(tx, partner, float_overdraft_minor=200))
    network.tx(lambda tx: record_topup(tx, partner, 100, "BANK-1"))
    network.earn(partner, member, "e1", points=250)
    network.earn(partner, member, "e2", points=50)
    with pytest.raises(FloatExhausted):
        network.earn(partner, member, "e3", points=1)
    assert network.tx(lambda tx: float_status(tx, partner))["balance_micro"] == -200 * 1_000_000
    assert [a["count"] for a in alerts(network, "float_in_overdraft")] == [1]


def test_a_batch_draws_event_by_event_and_refused_events_draw_nothing(network, prepaid):
    partner, member = prepaid
    network.tx(lambda tx: record_topup(tx, partner, 100, "BANK-1"))
    outcomes = network.post(partner, [Event("earn", "b1", member, 60), Event("earn", "b2", member, 60),
                                      Event("earn", "b3", member, 40)])
    assert [getattr(o, "code", "posted") for o in outcomes] == ["posted", "float_exhausted", "posted"]
    assert network.tx(lambda tx: float_status(tx, partner))["balance_micro"] == 0


def test_a_reversal_in_a_batch_gives_its_float_back_to_the_batchs_later_earns(network, prepaid):
    """As sent one by one: the reversal's negative funding is headroom for the next event of the same
    batch (it was refused as float_exhausted, "0 remain", with an alert)."""
    partner, member = prepaid
    network.tx(lambda tx: record_topup(tx, partner, 100, "BANK-1"))
    network.earn(partner, member, "e0", points=100)
    outcomes = network.post(partner, [Event(kind="reversal", reference="r0", original_reference="e0"),
                                      Event("earn", "e1", member, 100), Event("earn", "e2", member, 1)])
    assert [getattr(o, "code", "posted") for o in outcomes] == ["posted", "posted", "float_exhausted"]
    outcomes = network.post(partner, [Event("earn", "e3", member, 1), Event(kind="reversal", reference="r1",
                                      original_reference="e1", points=40), Event("earn", "e4", member, 40)])
    assert [getattr(o, "code", "posted") for o in outcomes] == ["float_exhausted", "posted", "posted"]
    assert network.tx(lambda tx: float_status(tx, partner))["balance_micro"] == 0
    [alert] = alerts(network, "float_exhausted")
    assert alert["count"] == 2 and alert["detail"]["reference"] == "e3"  # e2's and e3's, none for e1 or e4
    assert network.balance(member)["available"] == 100
    verify_ok(network)


def test_a_partner_without_a_float_limit_is_not_gated(network):
    partner = make_partner(network, **PREPAID)
    member = make_member(network, partner)
    network.earn(partner, member, "e1", points=10_000)
    assert not network.tx(lambda tx: float_status(tx, partner))["enforced"]


def test_settlement_shows_what_is_drawn_from_the_float(network, prepaid, clock):
    partner, member = prepaid
    network.tx(lambda tx: record_topup(tx, partner, 1_000, "BANK-1"))
    network.earn(partner, member, "e1", points=700)
    cycle = network.tx(lambda tx: cycle_date_for(tx.now, tx.settings), readonly=True)
    clock.advance(days=1)
    result = network.settle(cycle)
    statement = (network.settings.data_dir / "settlements" / cycle.isoformat() / statement_name(partner))
    assert "prepaid_funding" in statement.read_text()  # the statement still shows the obligation
    drawn = network.tx(lambda tx: dict(tx.session.execute(select(Settlement.party, Settlement.from_float_minor).where(
        Settlement.cycle_date == cycle, Settlement.from_float_minor != 0)).all()), readonly=True)
    assert drawn == {partner: 700, "network": -700}  # kept by settlement; the network got it with the top-up
    assert result["cycle_date"] == cycle.isoformat()


def test_exposure_alerts_near_and_over_the_limit_and_ignores_expired_points(network, clock):
    partner = make_partner(network, billing="postpaid", point_value="1")
    member = make_member(network, partner)
    network.tx(lambda tx: set_limits(tx, partner, exposure_limit_minor=1_000))
    network.earn(partner, member, "e1", points=700)
    assert network.tx(check_exposure) == []
    network.earn(partner, member, "e2", points=150)
    [near] = network.tx(check_exposure)
    assert (near["state"], near["value_minor"]) == ("near", 850)
    network.earn(partner, member, "e3", points=151)
    [over] = network.tx(check_exposure)
    assert (over["state"], over["outstanding_points"]) == ("exceeded", 1_001)
    assert {a["kind"] for a in network.tx(list_alerts, readonly=True)} == {"exposure_limit_near",
                                                                          "exposure_limit_exceeded"}
    clock.advance(days=400)  # every lot expired (default policy: 12 months)
    [state] = [e for e in network.tx(exposures, readonly=True) if e.partner_id == partner]
    assert (state.outstanding_points, state.state) == (0, "ok")


def test_bought_out_lots_are_no_longer_the_issuers_exposure(network, clock):
    issuer = make_partner(network, "Issuer", billing="postpaid", point_value="1")
    other = make_partner(network, "Other", billing="postpaid", point_value="1")
    member = make_member(network, issuer, also_linked_to=(other,))
    network.earn(issuer, member, "e1", points=500)
    network.earn(other, member, "o1", points=200)
    clock.advance(days=1)
    network.tx(lambda tx: terminate(tx, issuer, settlement="buy_out", buy_out_rate_ppm=1_000_000))
    state = {e.partner_id: e for e in network.tx(exposures, readonly=True)}
    # the issuer paid for these 500 points; the network reimburses their redemptions now
    assert (state[issuer].outstanding_points, state[issuer].value_minor) == (0, 0)
    assert state[other].outstanding_points == 200  # lots not bought out still count


def test_a_terminated_partner_cannot_post_but_keeps_paying_for_its_points_spent_elsewhere(network, clock):
    issuer = make_partner(network, billing="postpaid", point_value="1")
    shop = make_partner(network, billing="postpaid", point_value="1")
    member = make_member(network, issuer, also_linked_to=(shop,))
    network.earn(issuer, member, "e1", points=500)
    recorded = network.tx(lambda tx: terminate(tx, issuer))
    assert recorded["status"] == "terminated" and recorded["outstanding_points_at_termination"] == 500
    assert not network.tx(lambda tx: terminate(tx, issuer))["recorded"]
    # on other terms it is refused, not answered as if they were applied (until 2026-12-07: exit 0)
    with pytest.raises(TerminationConflict, match="already terminated with keep_paying"):
        network.tx(lambda tx: terminate(tx, issuer, settlement="buy_out", buy_out_rate_ppm=500_000))
    with pytest.raises(PartnerTerminated) as refused:
        network.earn(issuer, member, "e2", points=1)
    assert (refused.value.code, refused.value.status) == ("partner_terminated", 403)
    with pytest.raises(PartnerTerminated):
        network.tx(lambda tx: set_status(tx, issuer, "active"))
    clock.advance(days=3)
    network.burn(shop, member, "b1", 200)
    lines = network.tx(lambda tx: tx.session.execute(select(ObligationLine.payer, ObligationLine.payee,
                                                            ObligationLine.kind, ObligationLine.points)
                                                     .where(ObligationLine.kind == "redemption")).all())
    assert [tuple(line) for line in lines] == [(issuer, shop, "redemption", 200)]
    verify_ok(network)


def test_suspension_still_refuses_with_its_own_code(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.tx(lambda tx: set_status(tx, partner, "suspended"))
    with pytest.raises(PartnerSuspended):
        network.earn(partner, member, "e1", points=1)
    network.tx(lambda tx: set_status(tx, partner, "active"))
    assert network.earn(partner, member, "e2", points=1)["points"] == 1


@pytest.mark.postgres
def test_racing_issuance_of_one_prepaid_partner_never_overdraws_its_float(network, prepaid):
    from tests.ledger.test_concurrency_pg import run_together, unexpected

    partner, _ = prepaid
    members = [make_member(network, partner) for _ in range(16)]
    network.tx(lambda tx: record_topup(tx, partner, 100, "BANK-1"))
    outcomes = run_together(16, lambda i: network.earn(partner, members[i], f"race-{i}", points=10))
    assert unexpected(outcomes, FloatExhausted) == []
    assert sum(isinstance(o, dict) for o in outcomes) == 10
    assert network.tx(lambda tx: float_status(tx, partner))["balance_micro"] == 0
    verify_ok(network)


def test_a_buy_out_charges_the_issuer_once_and_the_network_reimburses_later_redemptions(network, clock):
    issuer = make_partner(network, billing="postpaid", point_value="1")
    shop = make_partner(network, billing="postpaid", point_value="1.5")
    first, second = (make_member(network, issuer, also_linked_to=(shop,)) for _ in range(2))
    network.earn(issuer, first, "e1", points=500)
    network.earn(issuer, second, "e2", points=300)
    network.burn(shop, first, "b0", 100)  # before the buy-out: the issuer reimburses
    clock.advance(days=1)
    ended = network.tx(lambda tx: terminate(tx, issuer, settlement="buy_out", buy_out_rate_ppm=800_000))
    assert (ended["outstanding_points_at_termination"], ended["buy_out_rate_ppm"]) == (700, 800_000)
    buy_out = network.tx(lambda tx: tx.session.execute(
        select(ObligationLine.payer, ObligationLine.payee, ObligationLine.kind, ObligationLine.points,
               ObligationLine.amount_micro).where(ObligationLine.entry_id == ended["buy_out_entry_id"])
        .order_by(ObligationLine.points)).all())
    # per lot: remaining × the lot's point value (1 fen) × 80 %
    assert [tuple(line) for line in buy_out] == [(issuer, "network", "prepaid_funding", 300, 240_000_000),
                                                 (issuer, "network", "prepaid_funding", 400, 320_000_000)]
    clock.advance(days=1)
    network.burn(shop, first, "b1", 150)
    redemptions = network.tx(lambda tx: tx.session.execute(
        select(ObligationLine.payer, ObligationLine.points, ObligationLine.amount_micro)
        .where(ObligationLine.kind == "redemption").order_by(ObligationLine.cycle_date)).all())
    assert [tuple(r) for r in redemptions] == [(issuer, 100, 150_000_000), ("network", 150, 225_000_000)]
    again = network.tx(lambda tx: terminate(tx, issuer, settlement="buy_out", buy_out_rate_ppm=800_000))
    assert not again["recorded"] and again["buy_out_entry_id"] == ended["buy_out_entry_id"]
    clock.advance(days=1)
    settled = network.settle_due()  # every cycle, the buy-out's final cycle included
    final = ended["final_cycle"]
    assert final in [run["cycle_date"] for run in settled]
    [position] = [run["net_positions"][issuer] for run in settled if run["cycle_date"] == final]
    assert position == -560  # 240 + 320 fen, the buy-out, in the issuer's final cycle
    statement = network.settings.data_dir / "settlements" / final / statement_name(issuer)
    assert statement.read_text().count(",adjustment,prepaid_funding,network,") == 2
    verify_ok(network)


def test_a_buy_out_needs_a_rate_between_0_and_1(network):
    from shared.errors import ValidationFailed

    partner = make_partner(network)
    for settlement, rate in (("buy_out", None), ("keep_paying", 500_000), ("buy_out", 1_000_001), ("sell", None)):
        with pytest.raises(ValidationFailed):
            network.tx(lambda tx: terminate(tx, partner, settlement=settlement, buy_out_rate_ppm=rate))


def test_activity_points_of_a_prepaid_partner_draw_on_its_float_too(network, prepaid):
    from shared.rules.store import set_rules

    partner, member = prepaid
    network.tx(lambda tx: set_rules(tx, partner, "activities:\n  survey: {points: 50}\n"))
    with pytest.raises(FloatExhausted):
        network.activity(partner, member, "survey", "s-1")
    network.tx(lambda tx: record_topup(tx, partner, 50, "BANK-1"))
    assert network.activity(partner, member, "survey", "s-2")["points"] == 50
    assert network.tx(lambda tx: float_status(tx, partner))["balance_micro"] == 0
