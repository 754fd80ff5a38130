"""The Batches section of docs/partner-integration.md against real answers: its example answer has the shape
of one, the answer is 200 and kept for its Idempotency-Key even when every event is refused, and the
whole-batch refusals it lists post nothing and are not kept."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.partner_api.conftest import assert_problem, enrol, entry_count

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "partner-integration.md"


def documented_example() -> dict:
    text = GUIDE.read_text(encoding="utf-8")
    section = text[text.index("**Batches.**"):]
    return json.loads(re.search(r"```json\n(.*?)\n```", section, re.S).group(1))


def skeleton(value):
    """The shape of a JSON value: its keys and value types, not its values."""
    if isinstance(value, dict):
        return {key: skeleton(item) for key, item in value.items()}
    if isinstance(value, list):
        return [skeleton(item) for item in value[:1]]
    return type(value).__name__


@pytest.fixture
def member(shop) -> str:
    member_id = enrol(shop, phone="+8613855550004")
    shop.ok("POST", "/v1/earn", {"member_id": member_id, "reference": "seed", "points": 500})
    return member_id


def test_the_documented_example_is_the_shape_of_a_real_answer(shop, member):
    example = documented_example()
    events = [{"type": "burn", "reference": r["reference"], "member_id": member,
               "points": 200 if r["status"] == 200 else 5000} for r in example["results"]]
    answer = shop.ok("POST", "/v1/batch", {"events": events})
    assert skeleton(answer) == skeleton(example)
    for real, documented in zip(answer["results"], example["results"], strict=True):
        assert skeleton(real) == skeleton(documented)
        assert (real["index"], real["reference"], real["status"]) == (
            documented["index"], documented["reference"], documented["status"])
        if "problem" in real:
            assert real["problem"]["code"] == documented["problem"]["code"]
            assert real["problem"]["status"] == real["status"]
    assert (answer["accepted"], answer["refused"]) == (example["accepted"], example["refused"])


def test_a_batch_of_refused_events_is_a_200_kept_for_its_key(shop, member, network):
    before = entry_count(network)
    events = [{"type": "burn", "reference": "b-1", "member_id": member, "points": 10**6},
              {"type": "earn", "reference": "e-1", "member_id": "mem_nobody", "points": 5},
              {"type": "reversal", "reference": "r-1", "original_reference": "no-such"}]
    first = shop.call("POST", "/v1/batch", {"events": events}, idempotency_key="ALL-REFUSED")
    assert first.status_code == 200, first.text
    answer = first.json()
    assert (answer["accepted"], answer["refused"]) == (0, 3)
    assert [(r["status"], r["problem"]["code"]) for r in answer["results"]] == [
        (409, "insufficient_points"), (404, "unknown_member"), (404, "unknown_reference")]
    replay = shop.call("POST", "/v1/batch", {"events": events}, idempotency_key="ALL-REFUSED")
    assert replay.headers["idempotent-replayed"] == "true" and replay.content == first.content
    # kept: a corrected batch needs a new key
    events[0]["points"] = 10
    assert_problem(shop.call("POST", "/v1/batch", {"events": events}, idempotency_key="ALL-REFUSED"),
                   422, "idempotency_key_reused")
    assert entry_count(network) == before


@pytest.mark.parametrize("events, status, code, field", [
    ([], 422, "validation_failed", "events"),
    ([{"type": "burn", "reference": "b-1", "points": 0}], 422, "validation_failed", "events.0.points"),
    ([{"type": "reversal", "reference": "r-1", "original_reference": "seed", "member_id": "m"}], 422,
     "validation_failed", "events.0.member_id"),
    ([{"type": "burn", "reference": f"b-{i}", "points": 1} for i in range(10_001)], 422, "batch_too_large", None),
])
def test_a_whole_batch_refusal_posts_nothing_and_is_not_kept(shop, member, network, events, status, code, field):
    events = [{**e, "member_id": member} if e["type"] == "burn" else e for e in events]
    before = entry_count(network)
    problem = assert_problem(shop.call("POST", "/v1/batch", {"events": events}, idempotency_key="WHOLE"),
                             status, code)
    if field:
        assert [e["field"] for e in problem["errors"]] == [field], problem
    assert entry_count(network) == before
    fixed = [{"type": "burn", "reference": "b-ok", "member_id": member, "points": 1}]
    answer = shop.ok("POST", "/v1/batch", {"events": fixed}, idempotency_key="WHOLE")  # the key is free
    assert answer["accepted"] == 1
