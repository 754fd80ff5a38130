"""An answer never names a member the partner is not linked to (docs/partner-integration.md §4): a reversal,
capture or void of the partner's own entry for a member that withdrew its consent answers `member_id` null,
as `balance` and as `GET /v1/transactions` shows it. Until 2026-12-07 it answered the member's id: after the
operators merged the record into another partner's member, the id of that member (one the partner cannot
see), telling it its former customer is that partner's member. A batch's results likewise; an answer kept
for an Idempotency-Key before the unlink is replayed as it was (the idempotency contract).

And a reversal of an earn whose points are held (not spent) says so: 409 `points_already_spent` with
`held`, posted once the hold is voided."""

from __future__ import annotations

import json

from services.partner_api.app import create_app
from shared.programme.merge import merge_members
from tests.partner_api.conftest import assert_problem, enrol
from tests.webhooks.conftest import Receiver, deliveries, register


def _earned_spent_unlinked(a) -> str:
    member = enrol(a)
    a.ok("POST", "/v1/earn", {"member_id": member, "reference": "e1", "points": 100})
    a.ok("POST", "/v1/burn", {"member_id": member, "reference": "b1", "points": 10})
    a.ok("POST", f"/v1/members/{member}/unlink")
    return member


def test_a_reversal_after_an_unlink_names_no_member(partners):
    a = partners("A")
    member = enrol(a)
    a.ok("POST", "/v1/earn", {"member_id": member, "reference": "e1", "points": 100})
    early = a.ok("POST", "/v1/reversals", {"reference": "r0", "original_reference": "e1", "points": 1})
    assert early["member_id"] == member
    first = a.call("POST", "/v1/burn", {"member_id": member, "reference": "b1", "points": 10}, idempotency_key="B-1")
    assert first.status_code == 200 and first.json()["member_id"] == member
    a.ok("POST", f"/v1/members/{member}/unlink")
    assert {t["member_id"] for t in a.ok("GET", "/v1/transactions")["transactions"]} == {None}

    answer = a.ok("POST", "/v1/reversals", {"reference": "rb", "original_reference": "b1", "points": 3})
    assert (answer["kind"], answer["points"], answer["member_id"], answer["balance"]) == ("reversal", 3, None, None)
    # the same reference again under a new key: the original result, still without the member
    again = a.ok("POST", "/v1/reversals", {"reference": "rb", "original_reference": "b1", "points": 3})
    assert again == answer
    # a reversal posted before the unlink, sent again under a new key: its result, without the member now
    assert a.ok("POST", "/v1/reversals", {"reference": "r0", "original_reference": "e1", "points": 1})[
        "member_id"] is None
    earn = a.ok("POST", "/v1/reversals", {"reference": "re", "original_reference": "e1", "points": 5})
    assert (earn["member_id"], earn["balance"]) == (None, None)
    # an answer kept for its Idempotency-Key before the unlink is replayed byte for byte, as it was
    replay = a.call("POST", "/v1/burn", {"member_id": member, "reference": "b1", "points": 10}, idempotency_key="B-1")
    assert replay.content == first.content and replay.headers["idempotent-replayed"] == "true"


def test_a_reversal_after_an_unlink_and_a_merge_names_not_the_other_partners_member(partners, network):
    a, b = partners("A"), partners("B")
    hooks = Receiver()
    try:
        for partner in (a, b):
            register(network, hooks, partner.partner_id)
        m, s = _earned_spent_unlinked(a), enrol(b)
        network.tx(lambda tx: merge_members(tx, s, m))
        assert a.call("GET", f"/v1/members/{s}").status_code == 404
        assert {r["member_id"] for r in a.ok("GET", "/v1/transactions")["transactions"]} == {None}

        answer = a.ok("POST", "/v1/reversals", {"reference": "rb", "original_reference": "b1", "points": 3})
        assert (answer["points"], answer["member_id"], answer["balance"]) == (3, None, None)
        assert s not in json.dumps(answer)
        # the reversal is told to b, the member's partner, not to a
        [told] = deliveries(network, event_type="points.reversed")
        assert told.partner_id == b.partner_id and json.loads(told.body)["data"]["member_id"] == s
        assert all(s not in d.body for d in deliveries(network, partner_id=a.partner_id))
    finally:
        hooks.close()


def test_a_batch_reversal_after_an_unlink_and_a_merge_names_no_member(partners, network):
    a, b = partners("A"), partners("B")
    m, s = _earned_spent_unlinked(a), enrol(b)
    mine = enrol(a)  # a member still linked to a: named as ever
    network.tx(lambda tx: merge_members(tx, s, m))
    answer = a.ok("POST", "/v1/batch", {"events": [
        {"type": "reversal", "reference": "rb", "original_reference": "b1", "points": 3},
        {"type": "earn", "reference": "e2", "member_id": mine, "points": 7},
        {"type": "reversal", "reference": "re", "original_reference": "e1", "points": 4}]})
    assert answer["accepted"] == 3, answer
    results = [r["result"] for r in answer["results"]]
    assert [(r["kind"], r["member_id"], r["balance"]) for r in results] == [
        ("reversal", None, None), ("earn", mine, {"available": 7, "held": 0}), ("reversal", None, None)]
    assert s not in json.dumps(answer)


def test_the_openapi_document_says_a_result_may_name_no_member():
    schema = create_app(None).openapi()["components"]["schemas"]["LedgerResult"]
    member_id = schema["properties"]["member_id"]
    assert {"type": "null"} in member_id["anyOf"], member_id
    assert "member_id" in schema["required"]  # always present, null or an id


def test_reversing_an_earn_whose_points_are_held_says_they_are_held(shop):
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e1", "points": 100})
    shop.ok("POST", "/v1/burn", {"member_id": member, "reference": "b1", "points": 5})
    hold = shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h1", "points": 80})["hold_id"]
    problem = assert_problem(shop.call("POST", "/v1/reversals", {"reference": "r1", "original_reference": "e1",
                                                                 "points": 90}), 409, "points_already_spent")
    assert (problem["remaining"], problem["held"]) == (15, 80), problem
    assert "80 are held" in problem["detail"] and "spent" in problem["detail"], problem
    shop.ok("POST", f"/v1/holds/{hold}/void", {})
    assert shop.ok("POST", "/v1/reversals", {"reference": "r1", "original_reference": "e1", "points": 90})[
        "reversible_remaining"] == 5


def test_reversing_a_spent_earn_says_none_is_held(shop):
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e1", "points": 100})
    shop.ok("POST", "/v1/burn", {"member_id": member, "reference": "b1", "points": 30})
    problem = assert_problem(shop.call("POST", "/v1/reversals", {"reference": "r1", "original_reference": "e1"}),
                             409, "points_already_spent")
    assert (problem["remaining"], problem["held"]) == (70, 0), problem
    assert "are held" not in problem["detail"], problem


def test_a_reference_posted_before_an_unlink_or_erasure_answers_its_result_as_it_was(partners, network):
    """docs/partner-integration.md §3: a new key with a reference already posted answers that posting's
    result, also once the member withdrew its consent or was erased (it was posted: a 404 would tell the
    till it was not) — as it was then, nothing newer; a new reference naming the member is refused."""
    a, b = partners("A"), partners("B")
    member = enrol(b)
    a.ok("POST", "/v1/members", {"link_token": b.ok("POST", f"/v1/members/{member}/link-tokens")["link_token"]})
    earn = {"member_id": member, "reference": "e1", "points": 10}
    first = a.ok("POST", "/v1/earn", earn)
    burn = a.ok("POST", "/v1/burn", {"member_id": member, "reference": "b1", "points": 4})
    a.ok("POST", f"/v1/members/{member}/unlink")
    b.ok("POST", "/v1/earn", {"member_id": member, "reference": "later", "points": 500})  # not a's to see

    assert a.ok("POST", "/v1/earn", earn) == first
    [replayed] = a.ok("POST", "/v1/batch", {"events": [{"type": "burn", "member_id": member, "reference": "b1",
                                                         "points": 4}]})["results"]
    assert (replayed["status"], replayed["result"]) == (200, burn)
    assert first["balance"] == {"available": 10, "held": 0} and burn["balance"] == {"available": 6, "held": 0}
    assert_problem(a.call("POST", "/v1/earn", {**earn, "reference": "e2"}), 404, "unknown_member")

    network.erase_member(member)
    assert b.ok("POST", "/v1/earn", {"member_id": member, "reference": "later", "points": 500})["points"] == 500
    assert_problem(b.call("POST", "/v1/earn", {"member_id": member, "reference": "new", "points": 1}),
                   409, "member_erased")
