"""A batch event takes the fields of its type's single call and no other (docs/partner-integration.md: "the
fields and bounds of the single calls"). Until 2026-12-06 only `items` was checked against the type: a batch
reversal with another member's `member_id` (and an `amount`, a `currency`) posted against the original
entry's member, answered 200 and stored the ignored fields in the entry's request, so the single retry of
the same reversal then conflicted (409 reference_conflict); the single call refuses such a body with 422."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.partner_api import schemas
from tests.partner_api.conftest import assert_problem, enrol, entry_count

SINGLE_CALLS = {"earn": schemas.EarnRequest, "burn": schemas.BurnRequest, "reversal": schemas.ReversalRequest}
BASE = {"earn": {"member_id": "mem_a", "reference": "x", "points": 5},
        "burn": {"member_id": "mem_a", "reference": "x", "points": 5},
        "reversal": {"reference": "x", "original_reference": "e-1"}}
VALUES = {"member_id": "mem_b", "reference": "y", "amount": 100, "currency": "CNY",
          "items": [{"sku": "S-1", "amount": 100}], "points": 3, "original_reference": "e-2",
          "occurred_at": "2026-12-06T08:00:00Z"}


@pytest.fixture
def member(shop) -> str:
    member_id = enrol(shop, phone="+8613855550001")
    shop.ok("POST", "/v1/earn", {"member_id": member_id, "reference": "seed", "points": 100})
    return member_id


def _refused_fields(model, body: dict) -> list[tuple]:
    try:
        model.model_validate(body)
    except ValidationError as error:
        return [(e["type"], e["loc"]) for e in error.errors()]
    return []


def test_the_batch_event_has_exactly_the_fields_of_the_single_calls():
    single = set().union(*(model.model_fields for model in SINGLE_CALLS.values()))
    assert set(schemas.BatchEvent.model_fields) == single | {"type"}
    assert set(VALUES) == single


@pytest.mark.parametrize("kind", sorted(SINGLE_CALLS))
@pytest.mark.parametrize("field", sorted(VALUES))
@pytest.mark.parametrize("value", ["given", None])
def test_a_batch_event_refuses_a_field_exactly_when_its_single_call_does(kind, field, value):
    """Given with a value or as an explicit null: the single call's model forbids the key either way."""
    body = {**BASE[kind], field: VALUES[field] if value == "given" else None}
    if value is None and field in BASE[kind]:
        return  # a required field set to null: a bound, not a field the type does not take
    single = _refused_fields(SINGLE_CALLS[kind], body)
    batch = _refused_fields(schemas.BatchEvent, {"type": kind, **body})
    if ("extra_forbidden", (field,)) in single:
        assert batch == [("extra_forbidden", (field,))]
    else:
        assert not [e for e in batch if e[0] == "extra_forbidden"], batch


def test_a_batch_reversal_naming_another_member_is_refused_whole_like_the_single_call(shop, partners, member, network):
    other = enrol(shop, phone="+8613855550002")
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e-1", "points": 40})
    before = entry_count(network)
    reversal = {"reference": "r-1", "original_reference": "e-1", "points": 10}
    smuggled = {**reversal, "member_id": other, "amount": 500, "currency": "CNY"}
    single = assert_problem(shop.call("POST", "/v1/reversals", smuggled), 422, "validation_failed")
    events = [{"type": "earn", "reference": "e-2", "member_id": member, "points": 5},
              {"type": "reversal", **smuggled}]
    response = shop.call("POST", "/v1/batch", {"events": events}, idempotency_key="FIELDS-1")
    problem = assert_problem(response, 422, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == ["events.1.member_id", "events.1.amount", "events.1.currency"]
    assert all(e["message"].startswith("Extra inputs are not permitted") for e in problem["errors"]), problem
    assert sorted(e["field"] for e in single["errors"]) == ["amount", "currency", "member_id"]
    assert entry_count(network) == before  # nothing posted, not even the valid earn
    # not stored for the key: the corrected batch with the same key runs, and the single retry replays it
    events[1] = {"type": "reversal", **reversal}
    answer = shop.ok("POST", "/v1/batch", {"events": events}, idempotency_key="FIELDS-1")
    assert [r["status"] for r in answer["results"]] == [200, 200], answer
    assert answer["results"][1]["result"]["member_id"] == member
    again = shop.ok("POST", "/v1/reversals", reversal)
    assert again["transaction_id"] == answer["results"][1]["result"]["transaction_id"]
    assert shop.ok("GET", f"/v1/members/{other}")["balance"]["available"] == 0


@pytest.mark.parametrize("event, field", [
    ({"type": "earn", "reference": "e-9", "points": 5, "original_reference": "seed"}, "original_reference"),
    ({"type": "burn", "reference": "b-9", "points": 5, "amount": 100}, "amount"),
    ({"type": "burn", "reference": "b-9", "points": 5, "currency": "CNY"}, "currency"),
    ({"type": "reversal", "reference": "r-9", "original_reference": "seed", "occurred_at": "2026-12-06T08:00:00Z"},
     "occurred_at"),
    ({"type": "reversal", "reference": "r-9", "original_reference": "seed", "member_id": None}, "member_id"),
])
def test_a_field_the_events_type_does_not_take_refuses_the_batch(shop, member, network, event, field):
    if event["type"] != "reversal":
        event = {**event, "member_id": member}
    before = entry_count(network)
    problem = assert_problem(shop.call("POST", "/v1/batch", {"events": [event]}), 422, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == [f"events.0.{field}"], problem
    assert f"events.0.{field}: Extra inputs are not permitted" in problem["detail"]
    assert entry_count(network) == before
