"""Erasure: the member's personal data goes, its points are forfeited as breakage with expiry's money
rules, the ledger keeps the opaque id and still verifies, and nothing posts to the member again."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from shared import errors
from shared.models import Entry, Member, MemberErasure, MemberLink
from tests.conftest import PG_URL
from tests.factories import make_member, make_partner, verify_ok
from tests.interleave import Pause, overlap
from tests.ledger.test_operations import MICRO, account, lines_of
from tests.partner_api.conftest import api, partners, serve, shop  # noqa: F401  (fixtures)
from tests.members.test_privacy import lookup


def _row(network, member_id):
    return network.tx(lambda tx: tx.session.execute(select(Member).where(Member.id == member_id)).scalar_one(),
                      readonly=True)


def test_erasure_forfeits_points_with_expiry_money_rules_and_keeps_the_ledger(network):
    pre = make_partner(network, "Prepaid", billing="prepaid", point_value="1", breakage_share="0.2")
    post = make_partner(network, "Postpaid", billing="postpaid", point_value="1")
    member = make_member(network, pre, phone="+8613812345678", email="li.lei@example.com", also_linked_to=(post,))
    network.earn(pre, member, "p1", points=1000)
    network.earn(post, member, "q1", points=500)
    network.burn(post, member, "b1", 100)  # takes from the earliest-expiring lot
    before = network.balance(member)["available"]

    record = network.erase_member(member, reason="DSR-2026-17")

    assert record["points_forfeited"] == before == 1400
    entry = network.tx(lambda tx: tx.session.execute(select(Entry).where(Entry.id == record["entry_id"]))
                       .scalar_one(), readonly=True)
    assert entry.kind == "expiry" and entry.member_id == member and entry.points == 1400
    # prepaid points pay the issuer back value × (1 − breakage share), exactly as expiry; postpaid moves no money
    prepaid_left = network.tx(lambda tx: tx.session.execute(
        select(Entry.points).where(Entry.id == record["entry_id"])).scalar_one(), readonly=True)
    refunds = lines_of(network, record["entry_id"])
    assert [line[:3] for line in refunds] == [("network", pre, "breakage_refund")]
    refunded_points = refunds[0][3]
    assert refunds[0][4] == refunded_points * MICRO * 8 // 10
    assert refunded_points in (900, 1000) and prepaid_left == 1400
    assert account(network, "network:expired") == 1400

    row = _row(network, member)
    assert row.status == "erased" and row.erased_at is not None
    assert (row.phone_ct, row.phone_bidx, row.email_ct, row.email_bidx, row.name_ct) == (None,) * 5
    assert row.available == 0 and row.held == 0
    assert lookup(network, phone="+8613812345678") is None and lookup(network, email="li.lei@example.com") is None
    refs = network.tx(lambda tx: tx.session.execute(select(MemberLink.customer_ref)
                                                    .where(MemberLink.member_id == member)).scalars().all())
    assert refs and all(ref is None for ref in refs)
    stored = network.tx(lambda tx: tx.session.execute(select(MemberErasure)).scalar_one(), readonly=True)
    assert (stored.member_id, stored.reason, stored.points_forfeited) == (member, "DSR-2026-17", 1400)
    # the member's id stays in the ledger, which still verifies
    ids = network.tx(lambda tx: tx.session.execute(select(Entry.member_id).where(Entry.member_id == member))
                     .scalars().all(), readonly=True)
    assert len(ids) == 4
    verify_ok(network)


def test_an_erased_member_cannot_earn_or_spend_and_is_not_erased_twice(network):
    shop = make_partner(network)
    member = make_member(network, shop)
    network.earn(shop, member, "e1", points=10)
    network.erase_member(member)
    for attempt in (lambda: network.earn(shop, member, "e2", points=5), lambda: network.burn(shop, member, "b", 1),
                    lambda: network.hold(shop, member, "h", 1)):
        with pytest.raises(errors.MemberErased) as caught:
            attempt()
        assert caught.value.code == "member_erased"
    with pytest.raises(errors.MemberErased):
        network.erase_member(member)
    with pytest.raises(errors.UnknownMember):
        network.erase_member("mem_nobody")
    verify_ok(network)


def test_erasure_is_refused_while_holds_are_open(network):
    shop = make_partner(network)
    member = make_member(network, shop)
    network.earn(shop, member, "e1", points=100)
    hold = network.hold(shop, member, "h1", 40)
    with pytest.raises(errors.HoldsOpen) as caught:
        network.erase_member(member)
    assert caught.value.code == "holds_open" and caught.value.status == 409
    assert _row(network, member).phone_ct is not None and _row(network, member).status == "active"
    network.void(shop, hold["hold_id"])
    assert network.erase_member(member)["points_forfeited"] == 100
    verify_ok(network)


def _holds(network, member_id):
    from shared.models import Hold

    return network.tx(lambda tx: [(h.id, h.status, h.resolved_entry_id) for h in tx.session.execute(
        select(Hold).where(Hold.member_id == member_id).order_by(Hold.id)).scalars()], readonly=True)


def _entries(network, member_id, kind):
    return network.tx(lambda tx: tx.session.execute(select(Entry).where(
        Entry.member_id == member_id, Entry.kind == kind)).scalars().all(), readonly=True)


def test_a_member_whose_only_hold_timed_out_is_erased_after_releasing_it(network, clock):
    """docs/ledger.md decision 7: a timed-out hold can be neither captured nor voided, and its points are
    the member's again. Erasure releases it first, as the hold-timeout job would (a ``hold_expiry`` entry
    for the hold's partner), then forfeits everything; the job later finds nothing to do."""
    till = make_partner(network)
    member = make_member(network, till)
    network.earn(till, member, "e1", points=100)
    hold = network.hold(till, member, "h1", 40)
    clock.advance(minutes=network.settings.hold_timeout_minutes + 1)
    for resolve in (lambda: network.void(till, hold["hold_id"]), lambda: network.capture(till, hold["hold_id"])):
        with pytest.raises(errors.HoldNotOpen):
            resolve()

    record = network.erase_member(member)

    assert record["points_forfeited"] == 100
    [released] = _entries(network, member, "hold_expiry")
    assert released.partner_id == till and released.points == 40 and released.hold_id == hold["hold_id"]
    assert _holds(network, member) == [(hold["hold_id"], "expired", released.id)]
    row = _row(network, member)
    assert row.status == "erased" and row.available == 0 and row.held == 0
    assert account(network, "network:expired") == 100
    assert network.expire_holds() == 0  # released once, by the erasure
    verify_ok(network)


def test_a_timed_out_hold_does_not_count_but_an_open_one_still_refuses_and_nothing_is_written(network, clock):
    till = make_partner(network)
    member = make_member(network, till)
    network.earn(till, member, "e1", points=100)
    lapsed = network.hold(till, member, "h1", 40)
    clock.advance(minutes=network.settings.hold_timeout_minutes + 1)
    network.hold(till, member, "h2", 10)
    with pytest.raises(errors.HoldsOpen) as caught:
        network.erase_member(member)
    assert caught.value.code == "holds_open" and "1 open holds" in caught.value.detail
    assert _entries(network, member, "hold_expiry") == []  # the refusal wrote nothing
    assert [h[1] for h in _holds(network, member) if h[0] == lapsed["hold_id"]] == ["open"]
    assert _row(network, member).status == "active"
    verify_ok(network)


def test_a_timed_out_hold_on_lots_past_their_expiry_is_released_then_forfeited(network, clock):
    """The held points of a lot that expired meanwhile come back and are forfeited with the rest."""
    pre = make_partner(network, "Prepaid", billing="prepaid", point_value="1", breakage_share="0.2")
    member = make_member(network, pre)
    network.earn(pre, member, "e1", points=100)
    hold = network.hold(pre, member, "h1", 60)
    clock.advance(days=400)  # past the lot's expiry (rolling:12) and the hold's timeout
    record = network.erase_member(member)
    assert record["points_forfeited"] == 100  # one expiry entry, the erasure's, with the released points
    assert [e.id for e in _entries(network, member, "expiry")] == [record["entry_id"]]
    [released] = _entries(network, member, "hold_expiry")
    assert released.points == 60 and _holds(network, member) == [(hold["hold_id"], "expired", released.id)]
    refunds = lines_of(network, record["entry_id"])
    assert [line[:4] for line in refunds] == [("network", pre, "breakage_refund", 100)]
    assert account(network, "network:expired") == 100
    assert _row(network, member).available == 0 and _row(network, member).held == 0
    verify_ok(network)


def test_a_member_with_nothing_left_is_erased_without_an_entry(network):
    shop = make_partner(network)
    member = make_member(network, shop)
    record = network.erase_member(member)
    assert record["entry_id"] is None and record["points_forfeited"] == 0
    verify_ok(network)


def test_duplicates_merged_into_the_member_lose_their_contact_too(network):
    from shared.programme.merge import merge_members

    shop = make_partner(network)
    survivor = make_member(network, shop, phone="+8613812345678")
    duplicate = make_member(network, shop, phone="+8613900001111")
    network.tx(lambda tx: merge_members(tx, survivor, duplicate))
    assert lookup(network, phone="+8613900001111") == survivor
    network.erase_member(survivor)
    assert lookup(network, phone="+8613900001111") is None
    assert _row(network, duplicate).phone_ct is None
    verify_ok(network)


@pytest.mark.skipif(bool(PG_URL), reason="the command runs on its data directory's SQLite database")
def test_members_erase_from_the_command_line_then_verify(tmp_path):
    import json

    from shared.config import Settings
    from shared.network import Network
    from tests.cli.inprocess import pointsnet

    data_dir = tmp_path / "data"

    def cli(*args):
        return pointsnet(*args, env={"POINTSNET_DATA_DIR": str(data_dir), "POINTSNET_DATABASE_URL": None})

    assert cli("db", "upgrade").returncode == 0
    network = Network(Settings(data_dir=data_dir))
    shop = make_partner(network)
    member = make_member(network, shop, phone="+8613812345678")
    network.earn(shop, member, "e1", points=30)
    hold = network.hold(shop, member, "h1", 10)
    network.close()

    refused = cli("members", "erase", member)
    assert refused.returncode != 0 and "holds_open" in refused.stderr
    network = Network(Settings(data_dir=data_dir))
    network.void(shop, hold["hold_id"])
    network.close()
    erased = cli("members", "erase", member, "--reason", "ticket 42")
    assert erased.returncode == 0, erased.stderr
    assert json.loads(erased.stdout)["points_forfeited"] == 30
    assert "+8613812345678" not in erased.stdout + erased.stderr
    verified = cli("verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_the_api_answers_member_erased_to_a_linked_partner(network, shop):
    from tests.partner_api.conftest import assert_problem, enrol

    member = enrol(shop, phone="+8613811112222")
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e1", "points": 10})
    network.erase_member(member)
    for path, body in (("/v1/earn", {"reference": "e2", "points": 5}), ("/v1/burn", {"reference": "b1", "points": 1}),
                       ("/v1/holds", {"reference": "h1", "points": 1})):
        assert_problem(shop.call("POST", path, {**body, "member_id": member}), 409, "member_erased")
    batch = shop.ok("POST", "/v1/batch", {"events": [{"type": "earn", "reference": "e3", "member_id": member,
                                                      "points": 1}]})
    assert "member_erased" in str(batch)
    assert_problem(shop.call("GET", f"/v1/members/{member}"), 404, "unknown_member")


def test_erasure_leaves_no_contact_hash_in_the_enrolments_idempotency_records(network, shop, partners):
    """The enrolment's idempotency record keeps the contact fields as keyed hashes (never in clear),
    next to the member id in its response: the same hashes erasure removes from the member's row."""
    from shared.ledger.idempotency import request_hash
    from shared.models import IdempotencyRecord
    from shared.programme.merge import merge_members
    from tests.partner_api.conftest import assert_problem

    phone, email = "+8613912345678", "li.lei@example.com"
    enrolment = {"phone": phone, "email": email, "name": "Li Lei", "customer_ref": "C-77"}
    member = shop.ok("POST", "/v1/members", enrolment, idempotency_key="enrol-1")["member_id"]
    assert shop.ok("POST", "/v1/members", enrolment)["member_id"] == member  # again, under another key
    other = partners("Other")
    token = shop.ok("POST", f"/v1/members/{member}/link-tokens")["link_token"]
    other.ok("POST", "/v1/members", {"link_token": token, "customer_ref": "X-1"})
    # the same person enrolled twice at Other, merged into the member: its enrolment goes too
    duplicate = other.ok("POST", "/v1/members", {"email": "lei.li@example.com"})["member_id"]
    network.tx(lambda tx: merge_members(tx, member, duplicate))
    bystander = shop.ok("POST", "/v1/members", {"phone": "+8613912340000", "customer_ref": "C-78"})["member_id"]
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e-1", "points": 10})

    network.erase_member(member, reason="ticket 7")

    keyring = network.keyring
    hashes = {keyring.blind_index(f"request.{field}", value) for field, value in
              (*enrolment.items(), ("customer_ref", "X-1"), ("email", "lei.li@example.com"))}
    records = network.tx(lambda tx: tx.session.execute(select(IdempotencyRecord)).scalars().all(), readonly=True)
    assert not [r for r in records if any(h in r.request for h in hashes)]
    erased = [r for r in records if r.request.endswith('"path":"/v1/members"}') and r.request_hash == request_hash(
        {"method": "POST", "path": "/v1/members", "body": {"erased": True}})]
    assert sorted(json.loads(r.response)["member_id"] for r in erased) == sorted([member] * 3 + [duplicate])
    # the rest stays: the earn's record, the bystander's enrolment
    assert [r for r in records if '"reference":"e-1"' in r.request]
    assert [r for r in records if bystander in r.response
            and keyring.blind_index("request.phone", "+8613912340000") in r.request]
    # a retry of the erased enrolment is refused, not made into a new member
    assert_problem(shop.call("POST", "/v1/members", enrolment, idempotency_key="enrol-1"),
                   422, "idempotency_key_reused")


@pytest.mark.parametrize("ending", ["erasure", "merge"])
def test_a_link_token_minted_during_an_erasure_or_merge_does_not_outlive_it(network, monkeypatch, ending):
    """The erasure (or the merge into another member) holds the member locked and deletes its unused
    tokens; a partner minting a link token meanwhile is refused once it commits, instead of leaving a
    token that another partner could redeem to link to the erased or merged member."""
    from shared.members import erasure
    from shared.models import LinkToken
    from shared.programme import merge

    partner = make_partner(network)
    member = make_member(network, partner)
    survivor = make_member(network, partner)
    if ending == "erasure":
        pause = Pause().after(monkeypatch, erasure, "lock_members")
        end = lambda: network.erase_member(member)  # noqa: E731
    else:
        pause = Pause().after(monkeypatch, merge, "lock_members")
        end = lambda: network.tx(lambda tx: merge.merge_members(tx, survivor, member))  # noqa: E731
    both = overlap(end, lambda: network.mint_link_token(partner, member), pause)
    assert not isinstance(both.first, Exception)
    # an erased member linked to the partner is 409 member_erased to a write naming it (since 2026-12-07)
    assert isinstance(both.second, errors.MemberErased if ending == "erasure" else errors.UnknownMember)
    tokens = network.tx(lambda tx: tx.session.execute(select(LinkToken.token_hash).where(
        LinkToken.member_id == member)).all(), readonly=True)
    assert tokens == []


def test_an_erasure_on_a_network_without_an_entry_makes_no_cycle(network, clock):
    """An erasure that forfeits nothing writes no entry: on a network without a single entry it leaves
    no ``cycles`` row behind (one before the network's first cycle is never settled and stays open)."""
    from datetime import date

    from shared.models import Cycle

    def cycle_days():
        return network.tx(lambda tx: list(tx.session.scalars(select(Cycle.cycle_date).order_by(Cycle.cycle_date))),
                          readonly=True)

    partner = make_partner(network)
    record = network.erase_member(make_member(network, partner))
    assert record["entry_id"] is None
    assert cycle_days() == []
    clock.advance(days=2)
    network.earn(partner, make_member(network, partner), "first", points=5)
    assert cycle_days() == [date(2026, 11, 22)]
    verify_ok(network)


def test_an_erasure_that_looked_before_the_first_entry_enters_the_cycle_when_it_finds_points(network, monkeypatch):
    """The network's first entry, an earn for the member, commits after the erasure looked for an entry
    and before its lock (PostgreSQL; on SQLite the one writer makes the earn wait): the erasure forfeits
    those points after all, and enters the open cycle for it, under the closed-cycle guard."""
    from shared.members import erasure as erasing

    partner = make_partner(network)
    member = make_member(network, partner)
    entered = []
    original = erasing.enter_open_cycle

    def spy(tx):
        entered.append(tx.now)
        return original(tx)

    monkeypatch.setattr(erasing, "enter_open_cycle", spy)
    pause = Pause().after(monkeypatch, erasing, "enter_open_cycle_once_posted")
    both = overlap(lambda: network.erase_member(member), lambda: network.earn(partner, member, "first", points=30), pause)
    assert isinstance(both.first, dict), both.first
    if both.second_waited:  # the earn came after the erasure
        assert isinstance(both.second, errors.MemberErased), both.second
        assert both.first["points_forfeited"] == 0 and entered == []
    else:
        assert isinstance(both.second, dict), both.second
        assert both.first["points_forfeited"] == 30 and len(entered) == 1
    verify_ok(network)
