"""Webhooks as a partner receives them: a real HTTP server, signatures checked with public libraries."""

from __future__ import annotations

import base64
import json
from datetime import date, timedelta

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks.webhooks import WebhookVerificationError

from shared.errors import InsufficientPoints
from shared.ledger.events import Event
from shared.ledger.posting import post_events
from shared.partners.limits import record_topup, set_limits
from shared.signing import jwk
from shared.webhooks import emit
from shared.webhooks.delivery import deliver_due, list_deliveries, replay
from shared.webhooks.endpoints import rotate_secret
from shared.webhooks.schedule import MIN_TRIES, RETRY_WINDOW
from tests.factories import make_member, make_partner
from tests.webhooks.conftest import bodies, deliveries, register, verify_v1, verify_v1a


def test_an_earn_arrives_signed_v1_and_v1a(network, clock, receiver):
    shop = make_partner(network, "Coffee")
    endpoint = register(network, receiver, shop)
    assert endpoint["secret"].startswith("whsec_") and endpoint["endpoint_id"].startswith("whe_")
    member = make_member(network, shop, phone="+8613800000001")
    earned = network.earn(shop, member, "till-1", points=120)

    [queued] = deliveries(network)
    assert queued.status == "pending" and queued.event_type == "points.earned"
    assert deliver_due(network)["delivered"] == 1

    [request] = receiver.at(f"/hooks/{shop}")
    assert request["headers"]["webhook-id"] == queued.id
    assert int(request["headers"]["webhook-timestamp"]) == int(clock.now().timestamp())
    payload = verify_v1(endpoint["secret"], request, clock.now())
    # v1a as the guide shows it: the network key from its JWK (GET /v1/network/keys), cryptography only
    x = jwk(network.signing_key.public_key(), "network")["x"]
    verify_v1a(Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "==")), request)
    assert payload["type"] == "points.earned"
    assert payload["timestamp"] == clock.now().isoformat().replace("+00:00", "Z")
    data = payload["data"]
    assert data["transaction_id"] == earned["entry_id"]
    assert (data["member_id"], data["partner_id"], data["reference"], data["points"]) == (member, shop, "till-1", 120)
    assert data["balance"] == {"available": 120, "held": 0}
    assert "8613800000001" not in request["body"]  # member ids only, never personal data
    [done] = deliveries(network)
    assert done.status == "delivered" and done.attempts == 1 and done.delivered_at == clock.now()
    assert deliver_due(network)["delivered"] == 0  # delivered once, not again


def test_tampered_body_or_wrong_key_fails_verification(network, clock, receiver):
    shop = make_partner(network)
    endpoint = register(network, receiver, shop)
    network.earn(shop, make_member(network, shop), "e1", points=5)
    deliver_due(network)
    [request] = receiver.requests
    tampered = request | {"body": request["body"].replace('"points":5', '"points":500')}
    with pytest.raises(WebhookVerificationError):
        verify_v1(endpoint["secret"], tampered, clock.now())
    with pytest.raises(InvalidSignature):
        verify_v1a(network.signing_key.public_key(), tampered)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    with pytest.raises(InvalidSignature):
        verify_v1a(Ed25519PrivateKey.generate().public_key(), request)


def test_every_ledger_event_type(network, clock, receiver):
    shop, books = make_partner(network, "Shop"), make_partner(network, "Books")
    register(network, receiver, shop)
    register(network, receiver, books)
    member = make_member(network, shop, also_linked_to=(books,))
    network.earn(shop, member, "e1", points=500)
    network.burn(books, member, "b1", points=100)
    hold = network.hold(books, member, "h1", 50)
    network.capture(books, hold["hold_id"], 30, reference="c1")
    network.reverse(books, "r1", "b1", points=40)
    network.reverse(shop, "r2", "e1", points=10)
    deliver_due(network)
    to_shop, to_books = bodies(receiver.at(f"/hooks/{shop}")), bodies(receiver.at(f"/hooks/{books}"))
    # deliveries are sent concurrently: receivers get no ordering guarantee, so compare in reference order
    to_shop.sort(key=lambda b: b["data"]["reference"])
    to_books.sort(key=lambda b: b["data"]["reference"])
    assert [(b["type"], b["data"]["reference"]) for b in to_shop] == [("points.earned", "e1"),
                                                                       ("points.reversed", "r2")]
    assert [(b["type"], b["data"].get("source"), b["data"]["reference"]) for b in to_books] == [
        ("points.redeemed", "burn", "b1"), ("points.redeemed", "hold_capture", "c1"), ("points.reversed", None, "r1")]
    assert to_books[1]["data"]["hold_id"] == hold["hold_id"] and to_books[1]["data"]["points"] == 30
    assert to_books[2]["data"]["original_reference"] == "b1" and to_books[2]["data"]["original_kind"] == "burn"
    assert to_shop[1]["data"]["original_kind"] == "earn" and to_shop[1]["data"]["points"] == 10
    assert to_shop[0]["data"]["lots"][0]["points"] == 500

    # expiry: nobody acted, so every partner the member is linked to hears of it
    clock.advance(days=400)
    assert network.expire_lots() > 0
    deliver_due(network)
    expired = [b for b in bodies(receiver.requests) if b["type"] == "points.expired"]
    assert len(expired) == 2 and {e["data"]["member_id"] for e in expired} == {member}
    assert expired[0]["data"]["balance"] == {"available": 0, "held": 0}


def test_settlement_ready_tells_each_partner_only_its_own_position(network, clock, receiver):
    coffee, books = make_partner(network, "CoffeeCo"), make_partner(network, "BookMart")
    idle = make_partner(network, "Idle")
    for partner in (coffee, books, idle):
        register(network, receiver, partner)
    member = make_member(network, coffee, also_linked_to=(books,))
    network.earn(coffee, member, "e1", points=500)
    network.burn(books, member, "b1", points=300)
    clock.advance(days=1)
    settled = network.settle(date(2026, 11, 20))
    deliver_due(network)
    for partner in (coffee, books):
        [ready] = [b for b in bodies(receiver.at(f"/hooks/{partner}")) if b["type"] == "settlement.ready"]
        assert ready["data"]["partner_id"] == partner
        assert ready["data"]["net_minor"] == settled["net_positions"][partner]
        assert ready["data"]["cycle_date"] == "2026-11-20"
    assert not receiver.at(f"/hooks/{idle}")  # not in the cycle
    network.settle(date(2026, 11, 20))  # a re-run settles nothing and announces nothing
    assert deliver_due(network)["delivered"] == 0


def test_settlement_ready_gives_a_float_partner_the_direction_of_what_moves_by_bank(network, clock, receiver):
    """docs/settlement-files.md: net -580 of which the float settles 700, so the network pays 120."""
    prepaid = make_partner(network, "Prepaid", billing="prepaid", point_value="1", issuance_fee="0",
                           redemption_fee_rate="0")
    issuer = make_partner(network, "Issuer", billing="postpaid", point_value="1", issuance_fee="0")
    network.tx(lambda tx: set_limits(tx, prepaid, float_overdraft_minor=0))
    network.tx(lambda tx: record_topup(tx, prepaid, 1_000, "TOPUP-1"))
    register(network, receiver, prepaid)
    member = make_member(network, prepaid, also_linked_to=(issuer,))
    network.earn(issuer, member, "i1", points=120)
    network.burn(prepaid, member, "b1", points=120)  # the issuer reimburses 120
    network.earn(prepaid, member, "e1", points=700)  # funded from the float
    clock.advance(days=1)
    network.settle(date(2026, 11, 20))
    deliver_due(network)
    [ready] = [b for b in bodies(receiver.at(f"/hooks/{prepaid}")) if b["type"] == "settlement.ready"]
    assert {key: ready["data"][key] for key in ("net_minor", "from_float_minor", "by_bank_minor", "direction")} == {
        "net_minor": -580, "from_float_minor": 700, "by_bank_minor": 120, "direction": "receive"}


def test_no_event_reaches_another_partner(network, clock, receiver):
    a, b, c = (make_partner(network, name) for name in ("A", "B", "C"))
    for partner in (a, b, c):
        register(network, receiver, partner)
    shared_member = make_member(network, a, also_linked_to=(b,))
    only_c = make_member(network, c)
    network.earn(a, shared_member, "a1", points=100)
    network.earn(c, only_c, "c1", points=100)
    network.burn(b, shared_member, "b1", points=10)
    # another module asks for partners the member is not linked to: they are dropped
    assert network.tx(lambda tx: emit(tx, "tier.changed", {"member_id": shared_member, "tier": "gold"},
                                      partner_ids=[a, c])) != []
    network.tx(lambda tx: emit(tx, "member.status_changed", {"member_id": only_c, "status": "erased"},
                               partner_ids=[a, b]))
    network.tx(lambda tx: emit(tx, "points.expiring", {"member_id": only_c, "points": 100}))
    deliver_due(network)
    linked = {a: {shared_member}, b: {shared_member}, c: {only_c}}
    for partner in (a, b, c):
        for body in bodies(receiver.at(f"/hooks/{partner}")):
            assert body["data"]["member_id"] in linked[partner], (partner, body)
            assert body["data"].get("partner_id", partner) == partner, (partner, body)
    types = {p: sorted(x["type"] for x in bodies(receiver.at(f"/hooks/{p}"))) for p in (a, b, c)}
    assert types == {a: ["points.earned", "tier.changed"], b: ["points.redeemed"],
                     c: ["points.earned", "points.expiring"]}


def test_outbox_rows_commit_with_the_ledger_or_not_at_all(network, receiver):
    shop = make_partner(network)
    register(network, receiver, shop)
    member = make_member(network, shop)
    with pytest.raises(InsufficientPoints):
        network.burn(shop, member, "too-much", points=10)
    assert deliveries(network) == []

    def unit_that_fails_later(tx):
        post_events(tx, shop, [Event("earn", "rolled-back", member, 50)])
        raise RuntimeError("the unit dies after posting")
    with pytest.raises(RuntimeError):
        network.tx(unit_that_fails_later)
    assert deliveries(network) == [] and network.balance(member)["available"] == 0

    outcomes = network.post(shop, [Event("earn", "ok", member, 50), Event("burn", "refused", member, 999)])
    assert isinstance(outcomes[1], InsufficientPoints)
    [only] = deliveries(network)
    assert json.loads(only.body)["data"]["reference"] == "ok"
    network.post(shop, [Event("earn", "ok", member, 50)])  # an idempotent replay posts nothing new
    assert len(deliveries(network)) == 1


def test_a_failed_delivery_is_retried_after_the_backoff(network, clock, receiver):
    shop = make_partner(network)
    endpoint = register(network, receiver, shop)
    network.earn(shop, make_member(network, shop), "e1", points=5)
    receiver.script = [500]
    assert deliver_due(network) == {"delivered": 0, "retrying": 1, "dead": 0, "stale": 0}
    [pending] = deliveries(network)
    assert pending.status == "pending" and pending.last_status_code == 500
    assert timedelta(seconds=4.5) <= pending.next_attempt_at - clock.now() <= timedelta(seconds=5.5)
    assert deliver_due(network)["delivered"] == 0 and len(receiver.requests) == 1  # not due yet
    clock.advance(seconds=6)
    assert deliver_due(network)["delivered"] == 1
    first, second = receiver.requests
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"] == pending.id
    assert first["body"] == second["body"]
    verify_v1(endpoint["secret"], second, clock.now())
    [done] = deliveries(network)
    assert done.status == "delivered" and done.attempts == 2


def test_a_delivery_job_outage_does_not_use_up_the_retry_window(network, clock, receiver):
    """Three failed tries, then no delivery job for four days: the message is not dead at its next
    failure, but keeps to the schedule (10 h apart) until it has had the tries the window gives."""
    shop = make_partner(network)
    register(network, receiver, shop)
    network.earn(shop, make_member(network, shop), "e1", points=5)
    receiver.always = 500
    for _ in range(3):
        assert deliver_due(network)["dead"] == 0
        [row] = deliveries(network)
        clock.set(row.next_attempt_at)
    clock.advance(days=4)  # the workers were down
    outcomes = []
    while not (outcome := deliver_due(network))["dead"]:
        outcomes.append(outcome)
        [row] = deliveries(network)
        assert row.status == "pending"
        clock.set(row.next_attempt_at)
    [dead] = deliveries(network)
    assert dead.attempts == len(receiver.requests) == MIN_TRIES
    assert len(outcomes) == MIN_TRIES - 4  # every try after the outage but the last was retried


def test_dead_letter_after_three_days_then_replay(network, clock, receiver):
    shop = make_partner(network)
    endpoint = register(network, receiver, shop)
    network.earn(shop, make_member(network, shop), "e1", points=5)
    started = clock.now()
    receiver.always = 500
    schedule = []
    while True:
        outcome = deliver_due(network)
        if outcome["dead"]:
            break
        [row] = deliveries(network)
        schedule.append(row.next_attempt_at - clock.now())
        clock.set(row.next_attempt_at)
        assert clock.now() - started < RETRY_WINDOW + timedelta(hours=12), "retried far past the window"
    [dead] = deliveries(network)
    assert dead.status == "dead" and dead.dead_at - started >= RETRY_WINDOW
    assert len(receiver.requests) == dead.attempts == len(schedule) + 1
    assert schedule[0] < timedelta(seconds=6) and timedelta(minutes=4) < schedule[1] < timedelta(minutes=6)
    assert all(step <= timedelta(hours=11) for step in schedule)
    dead_letters = network.tx(lambda tx: list_deliveries(tx, dead_only=True), readonly=True)
    assert [d["delivery_id"] for d in dead_letters] == [dead.id]
    clock.advance(days=1)
    assert deliver_due(network)["delivered"] == 0  # dead letters are not retried by themselves

    receiver.always = None
    replayed = replay(network, dead.id)
    assert replayed["status"] == "delivered" and replayed["previous_status"] == "dead"
    assert receiver.requests[-1]["headers"]["webhook-id"] == dead.id
    verify_v1(endpoint["secret"], receiver.requests[-1], clock.now())
    assert network.tx(lambda tx: list_deliveries(tx, dead_only=True), readonly=True) == []


def test_secret_rotation_signs_with_both_during_the_overlap(network, clock, receiver):
    shop = make_partner(network)
    old = register(network, receiver, shop)["secret"]
    member = make_member(network, shop)
    rotated = network.tx(lambda tx: rotate_secret(tx, shop, timedelta(hours=24)))
    new = rotated["secret"]
    assert new != old and new.startswith("whsec_")
    network.earn(shop, member, "during", points=5)
    deliver_due(network)
    during = receiver.requests[-1]
    signatures = during["headers"]["webhook-signature"].split(" ")
    assert [s.split(",")[0] for s in signatures] == ["v1", "v1", "v1a"]
    verify_v1(new, during, clock.now())
    verify_v1(old, during, clock.now())  # a receiver that has not switched yet still verifies
    verify_v1a(network.signing_key.public_key(), during)

    clock.advance(hours=25)
    network.earn(shop, member, "after", points=5)
    deliver_due(network)
    after = receiver.requests[-1]
    assert [s.split(",")[0] for s in after["headers"]["webhook-signature"].split(" ")] == ["v1", "v1a"]
    verify_v1(new, after, clock.now())
    with pytest.raises(WebhookVerificationError):
        verify_v1(old, after, clock.now())


def test_unregistered_partners_get_no_outbox_rows(network, receiver):
    shop = make_partner(network)
    network.earn(shop, make_member(network, shop), "e1", points=5)
    assert deliveries(network) == []


def test_an_unreachable_receiver_is_a_failure_that_is_retried(network, clock):
    from shared.ports import free_port
    from shared.webhooks.endpoints import set_endpoint

    port = free_port()  # a port nothing listens on
    shop = make_partner(network)
    network.tx(lambda tx: set_endpoint(tx, shop, f"http://127.0.0.1:{port}/hooks"))
    network.earn(shop, make_member(network, shop), "e1", points=5)
    assert deliver_due(network)["retrying"] == 1
    [row] = deliveries(network)
    assert row.status == "pending" and row.last_status_code is None and "ConnectError" in row.last_error


def test_emit_refuses_what_it_cannot_route(network, receiver):
    from shared.webhooks.errors import UnknownEventType

    shop = make_partner(network)
    register(network, receiver, shop)
    with pytest.raises(UnknownEventType):
        network.tx(lambda tx: emit(tx, "points.teleported", {"partner_id": shop}, partner_ids=[shop]))
    with pytest.raises(TypeError):
        network.tx(lambda tx: emit(tx, "tier.changed", {"member_id": "m"}, partner_ids=shop))
    with pytest.raises(ValueError):  # "every linked partner" needs a member
        network.tx(lambda tx: emit(tx, "tier.changed", {"tier": "gold"}))
    assert deliveries(network) == []


def test_a_disabled_endpoint_gets_nothing_until_enabled_again(network, clock, receiver):
    from shared.webhooks.endpoints import disable_endpoint

    shop = make_partner(network)
    register(network, receiver, shop)
    member = make_member(network, shop)
    network.earn(shop, member, "before", points=5)
    network.tx(lambda tx: disable_endpoint(tx, shop))
    network.earn(shop, member, "while-disabled", points=5)
    assert deliver_due(network)["delivered"] == 0 and receiver.requests == []
    register(network, receiver, shop)
    assert deliver_due(network)["delivered"] == 1
    assert [b["data"]["reference"] for b in bodies(receiver.requests)] == ["before"]


def test_the_retry_window_opens_at_the_first_attempt_not_when_queued(network, clock, receiver):
    """A message whose first attempt comes late (its endpoint was disabled, or the workers were
    down) still gets 3 days of retries."""
    from shared.webhooks.endpoints import disable_endpoint

    shop = make_partner(network)
    register(network, receiver, shop)
    network.earn(shop, make_member(network, shop), "e1", points=5)
    network.tx(lambda tx: disable_endpoint(tx, shop))
    clock.advance(days=3, minutes=1)
    register(network, receiver, shop)  # enabled again
    receiver.script = [503]
    assert deliver_due(network) == {"delivered": 0, "retrying": 1, "dead": 0, "stale": 0}
    [row] = deliveries(network)
    assert row.status == "pending" and row.attempts == 1 and row.retry_from == clock.now()
    clock.set(row.next_attempt_at)
    assert deliver_due(network)["delivered"] == 1


def test_a_message_first_tried_days_after_it_was_queued_gets_its_three_days(network, clock, receiver):
    """No endpoint change at all: the workers were down for more than the retry window."""
    shop = make_partner(network)
    register(network, receiver, shop)
    network.earn(shop, make_member(network, shop), "e1", points=5)
    clock.advance(days=3, minutes=1)  # nothing delivered meanwhile
    receiver.script = [503]
    assert deliver_due(network) == {"delivered": 0, "retrying": 1, "dead": 0, "stale": 0}
    [row] = deliveries(network)
    assert row.status == "pending" and row.attempts == 1 and row.retry_from == clock.now()


def test_a_message_retried_before_its_endpoint_was_disabled_gets_a_fresh_window(network, clock, receiver):
    from shared.webhooks.endpoints import disable_endpoint

    shop = make_partner(network)
    register(network, receiver, shop)
    network.earn(shop, make_member(network, shop), "e1", points=5)
    receiver.script = [500]
    assert deliver_due(network)["retrying"] == 1
    network.tx(lambda tx: disable_endpoint(tx, shop))
    clock.advance(days=4)
    register(network, receiver, shop)  # enabled again
    receiver.script = [500]
    assert deliver_due(network) == {"delivered": 0, "retrying": 1, "dead": 0, "stale": 0}
    [row] = deliveries(network)
    # its schedule starts afresh with the window: the first try since it was enabled again is try 1
    assert row.status == "pending" and row.attempts == 1 and len(receiver.requests) == 2


def test_a_run_with_nothing_due_makes_no_http_client(network, receiver, monkeypatch):
    from shared.webhooks import delivery

    shop = make_partner(network, "Idle")
    register(network, receiver, shop)
    made = []
    real = delivery.httpx.Client
    monkeypatch.setattr(delivery.httpx, "Client", lambda **kwargs: made.append(kwargs) or real(**kwargs))
    # the job runs every few seconds, mostly to find nothing: it must not pay for a client then
    assert deliver_due(network) == {"delivered": 0, "retrying": 0, "dead": 0, "stale": 0} and made == []
    member = make_member(network, shop, phone="+8613800000077")
    network.earn(shop, member, "till-77", points=5)
    assert deliver_due(network)["delivered"] == 1 and len(made) == 1
    assert made[0]["verify"] is delivery.tls_context()  # this thread's one TLS context


def test_a_tls_context_that_cannot_be_made_claims_nothing(network, receiver, monkeypatch):
    from shared.webhooks import delivery

    shop = make_partner(network, "Misconfigured")
    register(network, receiver, shop)
    network.earn(shop, make_member(network, shop, phone="+8613800000078"), "till-78", points=5)

    def no_context():
        raise FileNotFoundError("SSL_CERT_FILE names a missing file")

    monkeypatch.setattr(delivery, "tls_context", no_context)
    with pytest.raises(FileNotFoundError):
        deliver_due(network)
    # nothing leased, no attempt counted: once fixed, the delivery goes out on its first try
    [queued] = deliveries(network)
    assert queued.status == "pending" and queued.attempts == 0 and queued.claim_token is None
    monkeypatch.undo()
    assert deliver_due(network)["delivered"] == 1
