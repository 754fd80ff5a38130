"""POST /v1/batch: one result per event in order; valid events post exactly once; retries post nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.factories import verify_ok
from tests.partner_api.conftest import assert_problem, enrol, entry_count


@pytest.fixture
def member(shop) -> str:
    member_id = enrol(shop, phone="+8613855556666")
    shop.ok("POST", "/v1/earn", {"member_id": member_id, "reference": "seed", "points": 100})
    return member_id


def mixed(member: str) -> list[dict]:
    return [
        {"type": "earn", "reference": "e-1", "member_id": member, "amount": 12800, "currency": "CNY"},  # ok
        {"type": "earn", "reference": "e-2", "member_id": "mem_nobody", "points": 5},  # unknown member
        {"type": "burn", "reference": "b-1", "member_id": member, "points": 30},  # ok
        {"type": "burn", "reference": "b-2", "member_id": member, "points": 10**9},  # insufficient
        {"type": "reversal", "reference": "r-1", "original_reference": "no-such-ref"},  # unknown reference
        {"type": "earn", "reference": "e-3", "member_id": member, "points": 7},  # ok
        {"type": "reversal", "reference": "r-2", "original_reference": "e-3", "points": 2},  # ok, same batch
        {"type": "earn", "reference": "e-4", "member_id": member, "points": 5,
         "occurred_at": "2020-01-01T00:00:00Z"},  # too old
        {"type": "earn", "reference": "seed", "member_id": member, "points": 99},  # reference used differently
    ]


EXPECTED = [(200, None), (404, "unknown_member"), (200, None), (409, "insufficient_points"),
            (404, "unknown_reference"), (200, None), (200, None), (422, "occurred_at_out_of_range"),
            (409, "reference_conflict")]


def check(answer: dict, member: str) -> list[dict]:
    results = answer["results"]
    assert [r["index"] for r in results] == list(range(len(EXPECTED)))
    assert [r["reference"] for r in results] == [e["reference"] for e in mixed(member)]
    assert [(r["status"], r["problem"]["code"] if r.get("problem") else None) for r in results] == EXPECTED
    for r in results:
        if r["status"] == 200:
            assert r["result"]["transaction_id"] and r["result"]["balance"] and r.get("problem") is None
        else:
            assert r.get("result") is None and r["problem"]["status"] == r["status"] and r["problem"]["detail"]
    assert answer["accepted"] == 4 and answer["refused"] == 5
    return results


def test_mixed_batch_posts_valid_events_once_and_reports_each_error_at_its_index(shop, member, network):
    before = entry_count(network)
    answer = shop.ok("POST", "/v1/batch", {"events": mixed(member)}, idempotency_key="BATCH-1")
    results = check(answer, member)
    assert entry_count(network) == before + 4
    assert results[0]["result"]["points"] == 128
    assert results[6]["result"]["kind"] == "reversal"
    # balances: 100 seed + 128 - 30 + 7 - 2
    assert shop.ok("GET", f"/v1/members/{member}")["balance"]["available"] == 203
    assert results[6]["result"]["balance"]["available"] == 203
    verify_ok(network)


def test_a_retried_batch_posts_nothing_new(shop, member, network):
    first = shop.ok("POST", "/v1/batch", {"events": mixed(member)}, idempotency_key="BATCH-2")
    after_first = entry_count(network)

    # same Idempotency-Key: the stored answer, unchanged
    replay = shop.call("POST", "/v1/batch", {"events": mixed(member)}, idempotency_key="BATCH-2")
    assert replay.status_code == 200 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first
    assert entry_count(network) == after_first

    # a new key with the same references: the original results, nothing posted
    again = shop.ok("POST", "/v1/batch", {"events": mixed(member)}, idempotency_key="BATCH-3")
    results = check(again, member)
    for old, new in zip(first["results"], results):
        if old["status"] == 200:
            assert new["result"]["transaction_id"] == old["result"]["transaction_id"]
    assert entry_count(network) == after_first

    # the valid events one by one, as single calls: also the originals
    single = shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e-3", "points": 7})
    assert single["transaction_id"] == first["results"][5]["result"]["transaction_id"]
    assert entry_count(network) == after_first
    assert shop.ok("GET", f"/v1/members/{member}")["balance"]["available"] == 203
    verify_ok(network)


def test_a_retry_after_fixing_the_invalid_events_posts_only_those(shop, member, network):
    shop.ok("POST", "/v1/batch", {"events": mixed(member)})
    after_first = entry_count(network)
    fixed = [e for e in mixed(member) if e["reference"] in ("e-1", "b-1", "e-3", "r-2")]
    fixed += [{"type": "earn", "reference": "e-2", "member_id": member, "points": 5},
              {"type": "burn", "reference": "b-2", "member_id": member, "points": 3}]
    answer = shop.ok("POST", "/v1/batch", {"events": fixed})
    assert answer["accepted"] == 6 and answer["refused"] == 0
    assert entry_count(network) == after_first + 2


def test_the_same_reference_twice_in_one_batch_posts_once(shop, member, network):
    before = entry_count(network)
    event = {"type": "earn", "reference": "twice", "member_id": member, "points": 3}
    answer = shop.ok("POST", "/v1/batch", {"events": [event, event, {**event, "points": 4}]})
    statuses = [r["status"] for r in answer["results"]]
    assert statuses == [200, 200, 409], answer
    assert answer["results"][0]["result"]["transaction_id"] == answer["results"][1]["result"]["transaction_id"]
    assert answer["results"][2]["problem"]["code"] == "reference_conflict"
    assert entry_count(network) == before + 1


def test_a_reference_whose_earlier_line_was_refused_is_evaluated_as_a_new_event(shop, member, network):
    """A reference is taken only by what was posted: a line refused earlier in the batch (409
    insufficient_points, nothing written) leaves its reference free for the corrected line after it, as
    two single calls or two batches would. Once a line posted, its namesakes replay it or conflict."""
    before = entry_count(network)
    answer = shop.ok("POST", "/v1/batch", {"events": [
        {"type": "burn", "member_id": member, "reference": "pos-7", "points": 1_000},
        {"type": "burn", "member_id": member, "reference": "pos-7", "points": 50},
        {"type": "burn", "member_id": member, "reference": "pos-7", "points": 50},
        {"type": "burn", "member_id": member, "reference": "pos-7", "points": 40}]})
    outcomes = [(r["status"], (r.get("problem") or {}).get("code")) for r in answer["results"]]
    assert outcomes == [(409, "insufficient_points"), (200, None), (200, None), (409, "reference_conflict")], answer
    first, replay = answer["results"][1]["result"], answer["results"][2]["result"]
    assert replay == first and first["balance"]["available"] == 50
    assert entry_count(network) == before + 1
    assert shop.ok("GET", f"/v1/members/{member}")["balance"]["available"] == 50
    verify_ok(network)


def test_a_schema_invalid_event_refuses_the_whole_batch_and_posts_nothing(shop, member, network):
    before = entry_count(network)
    events = mixed(member)[:3] + [{"type": "earn", "reference": "bad", "member_id": member, "points": 0}]
    response = shop.call("POST", "/v1/batch", {"events": events}, idempotency_key="BATCH-4")
    body = assert_problem(response, 422, "validation_failed")
    assert "events.3" in str(body), body
    assert entry_count(network) == before
    # not stored: the corrected batch with the same key runs
    events[3]["points"] = 1
    fixed = shop.call("POST", "/v1/batch", {"events": events}, idempotency_key="BATCH-4")
    assert fixed.status_code == 200 and "idempotent-replayed" not in fixed.headers


def test_batch_limits(shop, member, network):
    assert_problem(shop.call("POST", "/v1/batch", {"events": []}), 422, "validation_failed")
    too_many = [{"type": "earn", "reference": f"m-{i}", "member_id": member, "points": 1} for i in range(10_001)]
    # the documented code (docs 5 and 6, the OpenAPI): a client splits its file on batch_too_large
    problem = assert_problem(shop.call("POST", "/v1/batch", {"events": too_many}), 422, "batch_too_large")
    assert "10000" in problem["detail"] and "10001" in problem["detail"], problem
    assert entry_count(network) == 1
    at_most = [{"type": "earn", "reference": f"m-{i}", "member_id": member, "points": 1} for i in range(10_000)]
    assert shop.ok("POST", "/v1/batch", {"events": at_most})["accepted"] == 10_000


@pytest.mark.postgres
def test_a_large_batch_answer_is_stored_with_lz4_and_replays_unchanged(shop, member, network):
    """Migration 0032: the record of a batch (its request and answer run to hundreds of kilobytes)
    is compressed with lz4, not PostgreSQL's slower default, and reads back exactly."""
    events = [{"type": "earn", "reference": f"lz-{i}", "member_id": member, "points": 1 + i % 7} for i in range(400)]
    first = shop.ok("POST", "/v1/batch", {"events": events}, idempotency_key="BATCH-LZ4")
    assert first["accepted"] == 400
    stored = network.tx(lambda tx: tx.session.execute(text(
        "SELECT length(request), length(response), pg_column_compression(request), "
        "pg_column_compression(response) FROM idempotency_records WHERE key = 'BATCH-LZ4'")).one(), readonly=True)
    assert stored[0] > 8000 and stored[1] > 8000, stored  # long enough to be compressed
    assert stored[2:] == ("lz4", "lz4")
    replay = shop.call("POST", "/v1/batch", {"events": events}, idempotency_key="BATCH-LZ4")
    assert replay.headers["idempotent-replayed"] == "true" and replay.json() == first
