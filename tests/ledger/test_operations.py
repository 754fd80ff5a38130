"""Ledger behaviour: lot order, holds, reversals, expiry, funding and the money lines they write."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from shared import errors
from shared.db.types import FAR_FUTURE
from shared.ledger.queries import account_balance
from shared.models import Entry, Hold, Lot, LotConsumption, ObligationLine
from shared.partners.contracts import ContractTerms, add_contract_version
from shared.rules.store import set_rules
from tests.factories import make_member, make_partner, verify_ok

MICRO = 1_000_000


# -- helpers ---------------------------------------------------------------------------------------

def ttl(network, days: int) -> None:
    """Lifetime of the lots issued from now on (0: no expiry, far-future date)."""
    network.settings.expiry_policy = f"days:{days}" if days else "never"


def lot(network, lot_id: str):
    return network.tx(lambda tx: tx.session.execute(select(Lot).where(Lot.id == lot_id)).scalar_one(), readonly=True)


def lines_of(network, entry_id: str) -> list[tuple]:
    """(payer, payee, kind, points, amount_micro) of one entry, sorted."""
    return sorted(network.tx(lambda tx: [tuple(r) for r in tx.session.execute(
        select(ObligationLine.payer, ObligationLine.payee, ObligationLine.kind, ObligationLine.points,
               ObligationLine.amount_micro).where(ObligationLine.entry_id == entry_id))], readonly=True))


def all_lines(network) -> list[tuple]:
    return sorted(network.tx(lambda tx: [tuple(r) for r in tx.session.execute(
        select(ObligationLine.payer, ObligationLine.payee, ObligationLine.kind, ObligationLine.points,
               ObligationLine.amount_micro))], readonly=True))


def moves_of(network, entry_id: str) -> list[tuple[str, int]]:
    """(lot id, points) taken (positive) or returned (negative) by one entry, in order."""
    return network.tx(lambda tx: [tuple(r) for r in tx.session.execute(
        select(LotConsumption.lot_id, LotConsumption.points).where(LotConsumption.entry_id == entry_id)
        .order_by(LotConsumption.seq))], readonly=True)


def account(network, name: str) -> int:
    return network.tx(lambda tx: account_balance(tx, name), readonly=True)


def earn_lot(network, partner, member, reference, points) -> str:
    return network.earn(partner, member, reference, points=points)["lots"][0]["lot_id"]


def bonus(network, member, points, **kw) -> dict:
    return network.grant_bonus(member, points, **kw)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


@pytest.fixture
def coalition(network):
    """Three postpaid partners worth 1 fen a point; the member is linked to all of them."""
    a = make_partner(network, "Alpha")
    b = make_partner(network, "Beta")
    c = make_partner(network, "Gamma")
    member = make_member(network, a, also_linked_to=(b, c))
    return a, b, c, member


# -- lot order -------------------------------------------------------------------------------------

def test_lots_are_consumed_earliest_expiry_first(network, clock, coalition):
    a, b, _, member = coalition
    ttl(network, 365)
    first = earn_lot(network, a, member, "e1", 100)         # expires t0 + 365 d
    clock.advance(hours=1)
    ttl(network, 30)
    soon = earn_lot(network, b, member, "e2", 50)           # issued later, expires first
    clock.advance(hours=1)
    ttl(network, 0)
    never = earn_lot(network, a, member, "e3", 70)          # no expiry: far future
    clock.advance(hours=1)
    ttl(network, 365)
    last = earn_lot(network, b, member, "e4", 20)           # expires just after `first`
    assert lot(network, never).expires_at == FAR_FUTURE.replace(tzinfo=lot(network, never).expires_at.tzinfo)

    burn = network.burn(a, member, "b1", 120)
    assert burn["consumed"] == [{"lot_id": soon, "points": 50}, {"lot_id": first, "points": 70}]
    burn = network.burn(a, member, "b2", 60)
    assert burn["consumed"] == [{"lot_id": first, "points": 30}, {"lot_id": last, "points": 20},
                                {"lot_id": never, "points": 10}]
    assert moves_of(network, burn["entry_id"]) == [(first, 30), (last, 20), (never, 10)]
    assert network.balance(member)["available"] == 60
    verify_ok(network)


def test_lots_expiring_together_are_consumed_oldest_first(network, clock, coalition):
    a, b, _, member = coalition
    ttl(network, 366)
    older = earn_lot(network, a, member, "e1", 10)
    clock.advance(days=1)
    ttl(network, 365)
    newer = earn_lot(network, b, member, "e2", 10)
    assert lot(network, older).expires_at == lot(network, newer).expires_at
    hold = network.hold(b, member, "h1", 15)
    assert moves_of(network, hold["entry_id"]) == []  # a hold reserves, it takes nothing yet
    capture = network.capture(b, hold["hold_id"])
    assert moves_of(network, capture["entry_id"]) == [(older, 10), (newer, 5)]


def test_grant_bonus_returns_a_dict_like_every_other_operation(network, coalition):
    a, _, _, member = coalition
    first = network.grant_bonus(member, 40, reason="welcome campaign", partner_id=a, reference="bonus-1")
    assert isinstance(first, dict), f"grant_bonus returned {type(first).__name__}: {first!r:.60}"
    replay = network.grant_bonus(member, 40, reason="welcome campaign", partner_id=a, reference="bonus-1")
    assert replay == first


def test_a_network_bonus_with_a_reference_is_granted_once(network, coalition):
    """A bonus's reference makes it exactly once, also when no partner is attributed (the database's
    unique (partner, reference) does not hold where the partner is NULL)."""
    a, _, _, member = coalition
    first = network.grant_bonus(member, 40, reason="welcome", reference="welcome-1")
    assert network.grant_bonus(member, 40, reason="welcome", reference="welcome-1") == first
    with pytest.raises(errors.ReferenceConflict):
        network.grant_bonus(member, 41, reason="welcome", reference="welcome-1")
    attributed = network.grant_bonus(member, 5, reason="shop", partner_id=a, reference="welcome-1")  # another scope
    assert attributed["entry_id"] != first["entry_id"]
    assert network.balance(member)["available"] == 45
    verify_ok(network)


def test_a_network_bonus_is_its_own_lot(network, clock, coalition):
    a, _, _, member = coalition
    earned = network.earn(a, member, "e1", points=100)
    granted = bonus(network, member, 40, reason="welcome campaign", partner_id=a, reference="bonus-1")
    assert granted["lots"][0]["funded_by"] == "network"
    assert granted["lots"][0]["lot_id"] != earned["lots"][0]["lot_id"]
    lots = {l["lot_id"]: l for l in network.balance(member)["lots"]}
    assert lots[earned["lots"][0]["lot_id"]]["funded_by"] == a and lots[earned["lots"][0]["lot_id"]]["remaining"] == 100
    assert lots[granted["lots"][0]["lot_id"]]["funded_by"] == "network"
    row = lot(network, granted["lots"][0]["lot_id"])
    assert (row.billing, row.funder_partner_id, row.contract_id, row.points) == ("network", None, None, 40)
    assert account(network, "network:promotions") == -40
    # the same bonus reference again is a replay, not a second bonus
    assert bonus(network, member, 40, reason="welcome campaign", partner_id=a, reference="bonus-1") == granted
    assert network.balance(member)["available"] == 140
    verify_ok(network)


# -- holds -----------------------------------------------------------------------------------------

def test_hold_partial_capture_returns_the_rest_and_writes_lines_only_at_capture(network, clock, coalition):
    a, b, _, member = coalition
    lot_id = earn_lot(network, a, member, "e1", 100)
    hold = network.hold(b, member, "h1", 60)
    assert hold["balance"] == {"available": 40, "held": 60}
    assert lot(network, lot_id).reserved == 60
    assert lines_of(network, hold["entry_id"]) == []  # obligation lines at capture, not at hold
    with pytest.raises(errors.InsufficientPoints):  # held points cannot be spent twice
        network.burn(b, member, "b1", 41)
    assert account(network, f"member:{member}:held") == 60

    capture = network.capture(b, hold["hold_id"], 25, reference="cap-1")
    assert (capture["captured"], capture["released"]) == (25, 35)
    assert capture["balance"] == {"available": 75, "held": 0}
    assert lines_of(network, capture["entry_id"]) == [(a, b, "redemption", 25, 25 * MICRO)]
    row = lot(network, lot_id)
    assert (row.remaining, row.reserved) == (75, 0)
    assert account(network, f"member:{member}:held") == 0
    assert account(network, f"partner:{b}:redeemed") == 25
    status = network.tx(lambda tx: tx.session.get(Hold, hold["hold_id"]).status, readonly=True)
    assert status == "captured"
    verify_ok(network)


def test_full_capture_without_points_takes_the_whole_hold(network, coalition):
    a, b, _, member = coalition
    earn_lot(network, a, member, "e1", 100)
    hold = network.hold(b, member, "h1", 60)
    capture = network.capture(b, hold["hold_id"])
    assert (capture["captured"], capture["released"]) == (60, 0)
    assert network.balance(member)["available"] == 40


def test_void_returns_everything_and_writes_no_lines(network, coalition):
    a, b, _, member = coalition
    lot_id = earn_lot(network, a, member, "e1", 100)
    hold = network.hold(b, member, "h1", 60)
    void = network.void(b, hold["hold_id"])
    assert void["balance"] == {"available": 100, "held": 0}
    assert lines_of(network, void["entry_id"]) == []
    assert (lot(network, lot_id).remaining, lot(network, lot_id).reserved) == (100, 0)
    assert [l for l in all_lines(network) if l[2] == "redemption"] == []
    verify_ok(network)


def test_a_hold_times_out_by_itself_exactly_once(network, clock, coalition):
    a, b, _, member = coalition
    lot_id = earn_lot(network, a, member, "e1", 100)
    hold = network.hold(b, member, "h1", 60)
    assert utc(hold["expires_at"]) == clock.now() + timedelta(minutes=15)
    clock.advance(minutes=14)
    assert network.expire_holds() == 0
    assert network.balance(member)["held"] == 60
    clock.advance(minutes=2)  # 16 minutes after the hold
    assert network.expire_holds() == 1
    assert network.balance(member)["available"] == 100
    assert network.balance(member)["held"] == 0
    assert (lot(network, lot_id).remaining, lot(network, lot_id).reserved) == (100, 0)
    assert network.tx(lambda tx: tx.session.get(Hold, hold["hold_id"]).status, readonly=True) == "expired"
    assert network.expire_holds() == 0  # resolves at most once
    with pytest.raises(errors.HoldNotOpen):
        network.capture(b, hold["hold_id"], 10)
    with pytest.raises(errors.HoldNotOpen):
        network.void(b, hold["hold_id"])
    expiries = network.tx(lambda tx: tx.session.execute(select(Entry.kind).where(
        Entry.hold_id == hold["hold_id"])).scalars().all(), readonly=True)
    assert sorted(expiries) == ["hold", "hold_expiry"]
    assert all_lines(network) == []
    verify_ok(network)


def test_a_timed_out_hold_cannot_be_captured_even_before_the_job_runs(network, clock, coalition):
    a, b, _, member = coalition
    earn_lot(network, a, member, "e1", 100)
    hold = network.hold(b, member, "h1", 60)
    clock.advance(minutes=16)
    with pytest.raises(errors.HoldNotOpen):
        network.capture(b, hold["hold_id"])
    assert network.expire_holds() == 1
    assert network.balance(member)["available"] == 100


# -- reversals -------------------------------------------------------------------------------------

def test_reversal_of_a_burn_returns_points_in_reverse_consumption_order(network, clock, coalition):
    a, b, c, member = coalition
    ttl(network, 10)
    early = earn_lot(network, a, member, "e1", 100)
    ttl(network, 365)
    late = earn_lot(network, b, member, "e2", 100)
    late_expiry = lot(network, late).expires_at
    burn = network.burn(c, member, "b1", 150)
    assert burn["consumed"] == [{"lot_id": early, "points": 100}, {"lot_id": late, "points": 50}]

    first = network.reverse(c, "r1", "b1", 30)
    assert moves_of(network, first["entry_id"]) == [(late, -30)]  # last taken, first returned
    assert first["reversible_remaining"] == 120

    clock.advance(days=11)  # `early` has expired meanwhile (nothing was left in it to expire)
    assert network.expire_lots() == 0
    early_expiry = lot(network, early).expires_at
    assert early_expiry < clock.now()
    second = network.reverse(c, "r2", "b1")
    assert moves_of(network, second["entry_id"]) == [(late, -20), (early, -100)]
    # the expired lot comes back with max(original, now + 30 days); the live one keeps its date
    assert lot(network, early).expires_at == max(early_expiry, clock.now() + timedelta(days=30))
    assert lot(network, early).expires_at == clock.now() + timedelta(days=30)
    assert lot(network, late).expires_at == late_expiry
    assert second["balance"]["available"] == 200
    # reversal lines are exact negatives of the burn's lines, lot by lot
    assert sum(l[4] for l in all_lines(network) if l[2] == "redemption") == 0
    assert lines_of(network, second["entry_id"]) == sorted([(b, c, "redemption", -20, -20 * MICRO),
                                                            (a, c, "redemption", -100, -100 * MICRO)])
    # the returned points of `early` expire at their new date
    clock.advance(days=30, seconds=1)
    assert network.expire_lots() == 100
    assert network.balance(member)["available"] == 100
    verify_ok(network)


def test_reversal_of_a_partial_capture_returns_to_its_lots(network, clock, coalition):
    a, b, c, member = coalition
    ttl(network, 5)
    early = earn_lot(network, a, member, "e1", 30)
    ttl(network, 365)
    late = earn_lot(network, b, member, "e2", 100)
    hold = network.hold(c, member, "h1", 80)
    capture = network.capture(c, hold["hold_id"], 50, reference="cap-1")
    assert moves_of(network, capture["entry_id"]) == [(early, 30), (late, 20)]
    clock.advance(days=6)
    reversal = network.reverse(c, "r1", "cap-1", 40)
    assert moves_of(network, reversal["entry_id"]) == [(late, -20), (early, -20)]
    assert lot(network, early).expires_at == clock.now() + timedelta(days=30)
    assert reversal["balance"] == {"available": 120, "held": 0}
    verify_ok(network)


def test_reversing_a_burn_does_not_revive_points_that_expired_meanwhile(network, clock, coalition):
    """Lot of 100 expires at day 10; 60 were burnt before. A reversal after day 10 returns the
    60 with the 30-day grace, but the 40 that were never spent expired at day 10 and stay
    expired (breakage) even if the expiry job has not run yet."""
    a, b, _, member = coalition
    ttl(network, 10)
    lot_id = earn_lot(network, a, member, "e1", 100)
    network.burn(b, member, "b1", 60)
    clock.advance(days=11)  # no expiry job has run
    network.reverse(b, "r1", "b1")
    network.expire_lots()
    assert network.balance(member)["available"] == 60
    assert account(network, "network:expired") == 40
    assert lot(network, lot_id).expires_at == clock.now() + timedelta(days=30)
    verify_ok(network)


def test_a_second_return_within_a_lots_grace_keeps_that_grace(network, clock, coalition):
    """A lot has one expiry. The first return after it expired gives it the grace; a later return while
    that grace runs finds a lot not past its expiry and keeps the date: its points expire with the
    first's (docs/ledger.md, "reversal of a burn or capture": the grace counts from the first return)."""
    a, b, _, member = coalition
    ttl(network, 10)
    lot_id = earn_lot(network, a, member, "e1", 100)
    network.burn(b, member, "b1", 40)
    network.burn(b, member, "b2", 60)
    clock.advance(days=11)
    network.reverse(b, "r1", "b1")
    graced = clock.now() + timedelta(days=30)
    assert lot(network, lot_id).expires_at == graced
    clock.advance(days=20)
    network.reverse(b, "r2", "b2")
    assert lot(network, lot_id).expires_at == graced
    assert network.balance(member)["available"] == 100
    clock.advance(days=10)
    assert network.expire_lots() == 100 and network.balance(member)["available"] == 0
    verify_ok(network)


def test_reversal_of_an_earn_takes_back_only_what_remains(network, coalition):
    a, b, _, member = coalition
    network.earn(a, member, "e1", points=100)
    network.burn(b, member, "b1", 70)
    result = network.reverse(a, "r1", "e1", 30)
    assert result["balance"]["available"] == 0 and result["reversible_remaining"] == 0
    assert account(network, f"partner:{a}:issued") == -70
    verify_ok(network)


def test_reversing_an_earn_gives_each_lots_points_back_to_its_funder(network, coalition):
    """An earn with network campaign points has a partner lot and a network lot; reversing it debits
    each funder's own account back: the partner's issued account for its lot, network:promotions for
    the network's (partly first, then the rest)."""
    a, _, _, member = coalition
    network.tx(lambda tx: set_rules(tx, "network", "campaigns: [{id: city, name: City day, starts_on: 2026-11-01, "
                                                   "ends_on: 2026-11-30, bonus_points: 10, funded_by: network}]"))
    earned = network.earn(a, member, "o-1", amount=10_000)
    assert {lot["funded_by"]: lot["points"] for lot in earned["lots"]} == {a: 100, "network": 10}
    network.reverse(a, "r-1", "o-1", 95)  # from the partner's lot
    assert (account(network, f"partner:{a}:issued"), account(network, "network:promotions")) == (-5, -10)
    network.reverse(a, "r-2", "o-1")  # the rest: 5 of the partner's, 10 of the network's
    assert (account(network, f"partner:{a}:issued"), account(network, "network:promotions")) == (0, 0)
    assert network.balance(member)["available"] == 0
    verify_ok(network)


# -- expiry and holds ------------------------------------------------------------------------------

@pytest.fixture
def expiring_hold(network, clock, coalition):
    """100 points in one lot expiring in 24 h; 10 minutes before that, 60 are put on hold."""
    a, b, _, member = coalition
    ttl(network, 1)
    lot_id = earn_lot(network, a, member, "e1", 100)
    clock.advance(hours=23, minutes=50)
    hold = network.hold(b, member, "h1", 60)
    clock.advance(minutes=12)  # the lot has expired, the hold (15 min) is still open
    return a, b, member, lot_id, hold["hold_id"]


def test_reserved_points_do_not_expire_while_held(network, expiring_hold):
    a, b, member, lot_id, hold_id = expiring_hold
    assert network.expire_lots() == 40
    assert network.balance(member)["available"] == 0
    assert network.balance(member)["held"] == 60
    row = lot(network, lot_id)
    assert (row.remaining, row.reserved) == (60, 60)
    assert network.expire_lots() == 0
    verify_ok(network)


def test_what_a_void_returns_from_an_expired_lot_expires_at_once(network, expiring_hold):
    a, b, member, lot_id, hold_id = expiring_hold
    network.expire_lots()
    network.void(b, hold_id)
    assert network.balance(member)["available"] == 0 and network.balance(member)["held"] == 0
    assert account(network, "network:expired") == 100
    assert lot(network, lot_id).remaining == 0
    verify_ok(network)


def test_what_a_void_returns_expires_at_once_even_before_the_expiry_job(network, expiring_hold):
    a, b, member, lot_id, hold_id = expiring_hold
    network.void(b, hold_id)
    assert network.balance(member)["available"] == 0 and network.balance(member)["held"] == 0
    assert account(network, "network:expired") == 100
    verify_ok(network)


def test_a_capture_from_an_expired_lot_still_redeems_and_the_rest_expires(network, expiring_hold):
    a, b, member, lot_id, hold_id = expiring_hold
    network.expire_lots()
    capture = network.capture(b, hold_id, 25)
    assert capture["captured"] == 25
    assert network.balance(member)["available"] == 0
    assert account(network, "network:expired") == 75
    assert lines_of(network, capture["entry_id"]) == [(a, b, "redemption", 25, 25 * MICRO)]
    verify_ok(network)


def test_a_hold_that_times_out_on_an_expired_lot_releases_into_expiry(network, clock, expiring_hold):
    a, b, member, lot_id, hold_id = expiring_hold
    clock.advance(minutes=5)
    assert network.expire_holds() == 1
    network.expire_lots()
    assert network.balance(member)["available"] == 0
    assert network.balance(member)["held"] == 0
    assert account(network, "network:expired") == 100
    verify_ok(network)


@pytest.mark.parametrize("release", ["void", "capture 20", "timeout"])
def test_a_reversals_grace_is_for_the_returned_points_not_for_what_a_hold_reserves(network, clock, coalition,
                                                                                    release):
    """A burn reversed into an expired lot gives that lot a grace (decision 13: only the returned
    points get it); the points an open hold reserves in the same lot keep the expiry they were
    reserved under, so what the hold releases still expires at once."""
    a, b, _, member = coalition
    ttl(network, 1)
    lot_id = earn_lot(network, a, member, "e1", 100)
    clock.advance(hours=23, minutes=45)
    network.burn(b, member, "b1", 30)
    clock.advance(minutes=5)
    hold = network.hold(b, member, "h1", 70)  # everything left in the lot
    clock.advance(minutes=12)  # the lot has expired; the hold is still open
    network.reverse(b, "r1", "b1")  # 30 come back, with the grace
    assert (network.balance(member)["available"], network.balance(member)["held"]) == (30, 70)
    assert lot(network, lot_id).expires_at > clock.now()
    if release == "void":
        network.void(b, hold["hold_id"])
    elif release == "capture 20":
        network.capture(b, hold["hold_id"], 20)
    else:
        clock.advance(minutes=5)
        assert network.expire_holds() == 1
    captured = 20 if release == "capture 20" else 0
    assert network.balance(member)["available"] == 30 and network.balance(member)["held"] == 0
    assert account(network, "network:expired") == 70 - captured
    assert (lot(network, lot_id).remaining, lot(network, lot_id).reserved) == (30, 0)
    clock.advance(days=29)
    assert network.expire_lots() == 0  # the returned 30 keep their grace
    verify_ok(network)


# -- money lines -----------------------------------------------------------------------------------

def test_prepaid_and_postpaid_money_lines(network, clock):
    pre = make_partner(network, "Prepaid", billing="prepaid", point_value="1", issuance_fee="0.1",
                       breakage_share="0.2")
    post = make_partner(network, "Postpaid", billing="postpaid", point_value="1", issuance_fee="0.1")
    shop = make_partner(network, "Shop", billing="postpaid", point_value="1.5", redemption_fee_rate="0.05")
    member = make_member(network, pre, also_linked_to=(post, shop))

    ttl(network, 10)
    pre_earn = network.earn(pre, member, "p1", points=1000)
    pre_lot = pre_earn["lots"][0]["lot_id"]
    ttl(network, 20)
    post_earn = network.earn(post, member, "q1", points=500)
    # prepaid: funding into the network's float at issuance; postpaid: the issuance fee only
    assert lines_of(network, pre_earn["entry_id"]) == sorted([
        (pre, "network", "issuance_fee", 1000, 1000 * MICRO // 10),
        (pre, "network", "prepaid_funding", 1000, 1000 * MICRO)])
    assert lines_of(network, post_earn["entry_id"]) == [(post, "network", "issuance_fee", 500, 500 * MICRO // 10)]

    # a redemption of a prepaid lot is paid by the network, at the redeemer's point value and fee
    burn = network.burn(shop, member, "s1", 300)
    assert burn["consumed"] == [{"lot_id": pre_lot, "points": 300}]
    assert lines_of(network, burn["entry_id"]) == sorted([
        ("network", shop, "redemption", 300, 450 * MICRO),
        (shop, "network", "redemption_fee", 300, 450 * MICRO * 5 // 100)])

    # prepaid expiry pays the issuer back value × (1 − breakage_share)
    clock.advance(days=10, seconds=1)
    assert network.expire_lots() == 700
    expired = network.tx(lambda tx: tx.session.execute(select(Entry.id).where(Entry.kind == "expiry"))
                         .scalars().all(), readonly=True)
    assert len(expired) == 1
    assert lines_of(network, expired[0]) == [("network", pre, "breakage_refund", 700, 700 * MICRO * 8 // 10)]

    # postpaid expiry moves no money
    clock.advance(days=10)
    assert network.expire_lots() == 500
    expired = network.tx(lambda tx: tx.session.execute(select(Entry.id).where(Entry.kind == "expiry")
                                                       .order_by(Entry.posted_at)).scalars().all(), readonly=True)
    assert len(expired) == 2 and lines_of(network, expired[1]) == []
    assert account(network, "network:expired") == 1200
    verify_ok(network)


def test_postpaid_redemption_is_paid_by_the_issuer(network, coalition):
    a, b, _, member = coalition
    network.earn(a, member, "e1", points=100)
    burn = network.burn(b, member, "b1", 40)
    assert lines_of(network, burn["entry_id"]) == [(a, b, "redemption", 40, 40 * MICRO)]


def test_a_network_funded_bonus_is_paid_by_the_network_when_redeemed(network, clock):
    funder = make_partner(network, "Funder", point_value="1", redemption_fee_rate="0.05")
    shop = make_partner(network, "Shop2", point_value="2", redemption_fee_rate="0.1")
    member = make_member(network, funder, also_linked_to=(shop,))
    granted = bonus(network, member, 50, reason="network campaign", partner_id=funder)
    clock.advance(minutes=1)
    earned = network.earn(funder, member, "e1", points=100)
    # the bonus is its own lot, consumed first (expires first); the partner's lot next
    burn = network.burn(funder, member, "b1", 120)
    assert burn["consumed"] == [{"lot_id": granted["lots"][0]["lot_id"], "points": 50},
                                {"lot_id": earned["lots"][0]["lot_id"], "points": 70}]
    # the network pays for the bonus points even where the bonus was attributed; the funder's own
    # 70 points redeemed at the funder move no money
    assert lines_of(network, burn["entry_id"]) == sorted([
        ("network", funder, "redemption", 50, 50 * MICRO),
        (funder, "network", "redemption_fee", 50, 50 * MICRO * 5 // 100)])
    more = bonus(network, member, 10, reason="network campaign")
    burn = network.burn(shop, member, "b2", 40)
    assert burn["consumed"] == [{"lot_id": earned["lots"][0]["lot_id"], "points": 30},
                                {"lot_id": more["lots"][0]["lot_id"], "points": 10}]
    assert lines_of(network, burn["entry_id"]) == sorted([
        (funder, shop, "redemption", 30, 60 * MICRO),
        ("network", shop, "redemption", 10, 20 * MICRO),
        (shop, "network", "redemption_fee", 30, 6 * MICRO),
        (shop, "network", "redemption_fee", 10, 2 * MICRO)])
    # a network bonus that expires moves no money
    left = bonus(network, member, 7, reason="network campaign")
    clock.advance(days=400)
    assert network.expire_lots() == 7
    expiry = network.tx(lambda tx: tx.session.execute(select(Entry.id).where(Entry.kind == "expiry")).scalar_one(),
                        readonly=True)
    assert moves_of(network, expiry) == [(left["lots"][0]["lot_id"], 7)]
    assert lines_of(network, expiry) == []
    verify_ok(network)


def test_redeeming_at_the_funding_partner_writes_no_money_lines(network, clock, coalition):
    a, b, _, member = coalition
    pre = make_partner(network, "PrepaidSelf", billing="prepaid", point_value="1", redemption_fee_rate="0.05")
    network.enrol(pre, link_token=network.mint_link_token(a, member)["link_token"])
    network.earn(a, member, "a1", points=100)
    clock.advance(minutes=1)
    network.earn(pre, member, "p1", points=100)
    burn = network.burn(a, member, "b1", 60)
    assert lines_of(network, burn["entry_id"]) == []  # no redemption, no fee
    hold = network.hold(a, member, "h1", 30)
    capture = network.capture(a, hold["hold_id"], 30)
    assert lines_of(network, capture["entry_id"]) == []
    # a prepaid funder redeeming its own points: no line either (payer would be network, but the
    # funder already paid for them)
    burn = network.burn(pre, member, "b2", 20)
    assert burn["consumed"][0]["points"] == 10  # the rest of a's lot first
    assert lines_of(network, burn["entry_id"]) == sorted([
        (a, pre, "redemption", 10, 10 * MICRO), (pre, "network", "redemption_fee", 10, MICRO // 2)])
    # no obligation line anywhere has payer = payee
    assert all(payer != payee for payer, payee, *_ in all_lines(network))
    verify_ok(network)


# -- contract versions -----------------------------------------------------------------------------

def test_contract_versions_take_effect_only_at_a_future_cycle_boundary(network, clock, coalition):
    a, b, _, member = coalition
    today = date(2026, 11, 20)  # 10:00 in Shanghai
    new_terms = ContractTerms(point_value="2", redemption_fee_rate="0.1")
    for when in (today, today - timedelta(days=1)):
        with pytest.raises(errors.ContractNotAtBoundary) as refusal:
            network.tx(lambda tx: add_contract_version(tx, b, new_terms, when))
        assert refusal.value.code == "contract_not_at_boundary"
    added = network.tx(lambda tx: add_contract_version(tx, b, new_terms))
    assert added["contract_version"] == 2 and added["effective_from"] == "2026-11-21"
    with pytest.raises(errors.ContractNotAtBoundary):  # one version per boundary, in order
        network.tx(lambda tx: add_contract_version(tx, b, ContractTerms(point_value="3"), date(2026, 11, 21)))

    network.earn(a, member, "e1", points=1000)
    clock.set(datetime(2026, 11, 20, 15, 59, 59, tzinfo=timezone.utc))  # 23:59:59 in Shanghai
    before = network.burn(b, member, "b1", 100)
    assert lines_of(network, before["entry_id"]) == [(a, b, "redemption", 100, 100 * MICRO)]
    clock.set(datetime(2026, 11, 20, 16, 0, tzinfo=timezone.utc))  # midnight: the next cycle
    after = network.burn(b, member, "b2", 100)
    assert after["cycle_date"] == "2026-11-21"
    assert lines_of(network, after["entry_id"]) == sorted([
        (a, b, "redemption", 100, 200 * MICRO), (b, "network", "redemption_fee", 100, 20 * MICRO)])

    # a reversal in the new cycle negates the original lines with the original contract version
    reversal = network.reverse(b, "r1", "b1", 50)
    rows = network.tx(lambda tx: tx.session.execute(select(ObligationLine).where(
        ObligationLine.entry_id.in_([before["entry_id"], reversal["entry_id"]]))).scalars().all(), readonly=True)
    original = [r for r in rows if r.entry_id == before["entry_id"]]
    negated = [r for r in rows if r.entry_id == reversal["entry_id"]]
    assert [(r.points, r.amount_micro) for r in negated] == [(-50, -50 * MICRO)]
    assert negated[0].contract_id == original[0].contract_id
    assert negated[0].cycle_date == date(2026, 11, 21) and original[0].cycle_date == today
    verify_ok(network)
