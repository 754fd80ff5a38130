"""Every 422 ``validation_failed`` carries ``errors`` naming what it refuses (docs/partner-integration.md,
section 6), and a reference the API does not take — more than 128 characters, or a control character —
is a schema refusal: a batch holding one is refused whole, nothing posted and nothing kept for its
Idempotency-Key, never that event alone (section 5)."""

from __future__ import annotations

import pytest

from services.partner_api import cursors
from tests.partner_api.conftest import assert_problem, enrol, entry_count

CONTROL = ["bad\tX", "bad\nX", "bad\rX", "bad\x01X", "bad\x1fX", "bad\x7fX"]


def refused(response, *fields: str) -> dict:
    """422 validation_failed whose ``errors`` name exactly ``fields``, each with a message."""
    body = assert_problem(response, 422, "validation_failed")
    assert isinstance(body.get("errors"), list) and body["errors"], body
    assert all(error.get("message") for error in body["errors"]), body
    assert sorted({error["field"] for error in body["errors"]}) == sorted(fields), body
    return body


def test_a_batch_with_a_control_character_in_a_reference_is_refused_whole(shop, network):
    member = enrol(shop)
    before = entry_count(network)
    events = [{"type": "earn", "member_id": member, "reference": "ok0-X", "points": 1},
              {"type": "earn", "member_id": member, "reference": None, "points": 1},
              {"type": "earn", "member_id": member, "reference": "ok1-X", "points": 1}]
    for reference in CONTROL:
        events[1]["reference"] = reference
        refused(shop.call("POST", "/v1/batch", {"events": events}, idempotency_key="B-1"), "events.1.reference")
        assert entry_count(network) == before
    events[1]["reference"] = "fixed-X"  # corrected, sent again with the same key: nothing was kept for it
    answer = shop.ok("POST", "/v1/batch", {"events": events}, idempotency_key="B-1")
    assert (answer["accepted"], answer["refused"]) == (3, 0), answer
    assert entry_count(network) == before + 3


def test_a_batch_reversal_naming_a_reference_with_a_control_character_is_refused_whole(shop, network):
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e1", "points": 5})
    before = entry_count(network)
    events = [{"type": "earn", "member_id": member, "reference": "e2", "points": 1},
              {"type": "reversal", "reference": "r1", "original_reference": "e1\n"}]
    refused(shop.call("POST", "/v1/batch", {"events": events}), "events.1.original_reference")
    assert entry_count(network) == before


def test_every_single_call_refuses_a_control_character_in_a_reference_naming_the_field(shop, network):
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "seed", "points": 50})
    holds = [shop.ok("POST", "/v1/holds", {"member_id": member, "reference": f"h{n}", "points": 5})["hold_id"]
             for n in range(2)]
    before = entry_count(network)
    for path, body, field in [
        ("/v1/earn", {"member_id": member, "reference": "bad\tX", "points": 1}, "reference"),
        ("/v1/earn/quote", {"member_id": member, "reference": "bad\tX", "points": 1}, "reference"),
        ("/v1/burn", {"member_id": member, "reference": "bad\nX", "points": 1}, "reference"),
        ("/v1/holds", {"member_id": member, "reference": "bad\x01X", "points": 1}, "reference"),
        (f"/v1/holds/{holds[0]}/capture", {"reference": "bad\x7fX"}, "reference"),
        (f"/v1/holds/{holds[1]}/void", {"reference": "bad\rX"}, "reference"),
        ("/v1/reversals", {"reference": "bad\tX", "original_reference": "seed"}, "reference"),
        ("/v1/reversals", {"reference": "r-ok", "original_reference": "seed\t"}, "original_reference"),
    ]:
        refused(shop.call("POST", path, body), field)
    assert entry_count(network) == before


def test_a_reference_is_1_to_128_characters_of_any_kind_but_control_characters(shop):
    member = enrol(shop)
    for reference in ["订单-2026-0001", "café", "a\x80b", "x" * 128, "with space ~!"]:
        assert shop.ok("POST", "/v1/earn", {"member_id": member, "reference": reference, "points": 1})
    refused(shop.call("POST", "/v1/earn", {"member_id": member, "reference": "x" * 129, "points": 1}), "reference")
    refused(shop.call("POST", "/v1/earn", {"member_id": member, "reference": "", "points": 1}), "reference")


def test_a_cursor_not_given_out_is_refused_naming_the_cursor_on_every_list(shop, network):
    member = enrol(shop)
    key = cursors.cursor_key(network.signing_key)
    made_up = "eyJ4IjoxfQ.AAAAAAAAAAAAAAAAAAAAAA"
    lists = [(f"/v1/members/{member}/history", ("history", shop.partner_id, member)),
             ("/v1/transactions", ("transactions", shop.partner_id)),
             ("/v1/statements", ("statements", shop.partner_id))]
    for path, listing in lists:
        # made up, not even of the cursor's form, and signed by the network but holding no position of this list
        for cursor in (made_up, "not-a-cursor", cursors.give(key, listing, ["no", "position", 3])):
            refused(shop.call("GET", path, params={"cursor": cursor}), "cursor")
    # signed positions of the right shape but of the wrong kind: each list's own checks
    refused(shop.call("GET", f"/v1/members/{member}/history",
                      params={"cursor": cursors.give(key, lists[0][1], ["2026-11-20T02:00:00", "ent_x"])}), "cursor")
    refused(shop.call("GET", f"/v1/members/{member}/history",
                      params={"cursor": cursors.give(key, lists[0][1], ["not a time", "ent_x"])}), "cursor")
    refused(shop.call("GET", "/v1/statements",
                      params={"cursor": cursors.give(key, lists[2][1], "2026-13-40")}), "cursor")


def test_other_validation_failures_name_their_fields(shop, partners):
    """The schema's and the door's refusals, for completeness: each names its field."""
    member = enrol(shop)
    refused(shop.call("POST", "/v1/batch", {"events": []}), "events")
    refused(shop.call("POST", "/v1/earn", {"member_id": member, "reference": "r\u0000", "points": 1}), "body")
    refused(shop.call("GET", "/v1/transactions", params={"limit": 0}), "limit")
    enrol(shop, phone="+8613900000001")  # enrolled without a referrer: one cannot be named afterwards
    refused(shop.call("POST", "/v1/members", {"phone": "+8613900000001", "referrer_member_id": member}),
            "referrer_member_id")


def test_the_ledgers_own_validation_failures_name_their_fields_too(shop, network):
    """The ledger's checks behind the schema (another caller than this API, an event the schema let by):
    each ``validation_failed`` names its field, as the API's do."""
    from shared.errors import ValidationFailed
    from shared.ledger.events import Event

    member = enrol(shop)
    outcomes = network.post(shop.partner_id, [
        Event("earn", "bad\tX", member, 1), Event("earn", "x" * 129, member, 1), Event("earn", None, member, 1),
        Event("bogus", "r1", member, 1), Event("earn", "ok", member + "\x00", 1)])
    named = []
    for outcome in outcomes:
        assert type(outcome) is ValidationFailed, outcome
        named.append([error["field"] for error in outcome.to_problem()["errors"]])
    assert named == [["reference"], ["reference"], ["reference"], ["type"], ["member_id"]]
    with pytest.raises(ValidationFailed) as caught:
        network.earn(shop.partner_id, member, "k1", points=1, idempotency_key="")
    assert [error["field"] for error in caught.value.to_problem()["errors"]] == ["Idempotency-Key"]
