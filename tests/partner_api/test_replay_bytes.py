"""A retry with the same Idempotency-Key gets the first answer byte for byte: body, status and
Content-Digest (the design: the stored body comes back unchanged).

Until 2026-12-04 the first answer was written with the keys in the order the code built them and the
stored one with sorted keys: equal JSON, different bytes, so a partner comparing digests (or
signatures over them) saw two answers.
"""

from __future__ import annotations

import pytest

from tests.partner_api.conftest import assert_problem, enrol


@pytest.fixture
def member(shop) -> str:
    member_id = enrol(shop, phone="+8613812340000")
    shop.ok("POST", "/v1/earn", {"member_id": member_id, "reference": "seed", "points": 100})
    return member_id


def _twice(shop, path: str, body: dict, key: str):
    first = shop.call("POST", path, body, idempotency_key=key)
    retry = shop.call("POST", path, body, idempotency_key=key)
    assert retry.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    assert retry.status_code == first.status_code
    assert retry.content == first.content, (first.content[:300], retry.content[:300])
    assert retry.headers["content-digest"] == first.headers["content-digest"]
    return first


def test_an_earn_is_replayed_byte_for_byte(shop, member):
    first = _twice(shop, "/v1/earn", {"member_id": member, "reference": "e-bytes", "amount": 12800}, "K-earn")
    assert first.status_code == 200, first.text


def test_a_batch_is_replayed_byte_for_byte(shop, member):
    events = [{"type": "earn", "member_id": member, "reference": f"b-{i}", "points": i + 1} for i in range(3)]
    events.append({"type": "burn", "member_id": member, "reference": "b-burn", "points": 10**9})  # refused inside
    first = _twice(shop, "/v1/batch", {"events": events}, "K-batch")
    assert first.status_code == 200, first.text


def test_a_business_refusal_is_replayed_byte_for_byte(shop, member):
    first = _twice(shop, "/v1/burn", {"member_id": member, "reference": "b-big", "points": 10**9}, "K-refused")
    assert_problem(first, 409, "insufficient_points")


def test_an_enrolment_is_replayed_byte_for_byte_with_its_201(shop):
    first = _twice(shop, "/v1/members", {"phone": "+86 139 1111 2222", "customer_ref": "C-1"}, "K-enrol")
    assert first.status_code == 201, first.text
