"""What partners send at the edges of the contract: optional bodies left out, numbers beyond any
till, NUL characters. Each is answered as docs/partner-integration.md says — never a 500 (on
PostgreSQL a NUL in text or an integer beyond 64 bits fails in the database driver) — and a
refusal posts nothing."""

from __future__ import annotations

import pytest

from services.partner_api.schemas import MAX_AMOUNT, MAX_QUANTITY
from tests.partner_api.conftest import assert_problem, enrol, entry_count


@pytest.fixture
def member(shop) -> str:
    member_id = enrol(shop, phone="+8613812340000")
    shop.ok("POST", "/v1/earn", {"member_id": member_id, "reference": "seed", "points": 100})
    return member_id


# -- optional bodies ---------------------------------------------------------------------------

@pytest.mark.parametrize("action", ["capture", "void"])
def test_capture_and_void_take_no_body_at_all(shop, member, action):
    """docs 5: capture has only optional fields (`points`, `reference`), void only `reference`: a POST
    without a body is the same request as `{}` (found by review: it was 422 "body: Field required")."""
    hold = shop.ok("POST", "/v1/holds", {"member_id": member, "reference": f"h-{action}", "points": 10})["hold_id"]
    response = shop.call("POST", f"/v1/holds/{hold}/{action}", idempotency_key=f"K-{action}")
    assert response.status_code == 200, response.text
    assert response.json()["balance"] == {"available": 90 if action == "capture" else 100, "held": 0}
    again = shop.call("POST", f"/v1/holds/{hold}/{action}", {}, idempotency_key=f"K-{action}")
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true", again.text


# -- huge numbers ------------------------------------------------------------------------------

def _earn(member: str, reference: str, **fields) -> dict:
    return {"member_id": member, "reference": reference, "amount": 100, **fields}


HUGE = [
    ("earn amount", "/v1/earn", lambda m: _earn(m, "huge-1", amount=10**30)),
    ("earn amount over the bound", "/v1/earn", lambda m: _earn(m, "huge-2", amount=MAX_AMOUNT + 1)),
    ("item amount", "/v1/earn", lambda m: _earn(m, "huge-3", items=[{"sku": "a", "amount": 10**30}])),
    ("item quantity", "/v1/earn", lambda m: _earn(m, "huge-4", items=[{"sku": "a", "amount": 1, "quantity": 10**30}])),
    ("item quantity over the bound", "/v1/earn",
     lambda m: _earn(m, "huge-5", items=[{"sku": "a", "amount": 1, "quantity": MAX_QUANTITY + 1}])),
    ("quote amount", "/v1/earn/quote", lambda m: _earn(m, "huge-6", amount=10**30)),
    ("batch event amount", "/v1/batch",
     lambda m: {"events": [{"type": "earn", "reference": "huge-7", "member_id": m, "amount": 10**30}]}),
]


@pytest.mark.parametrize("path,body", [h[1:] for h in HUGE], ids=[h[0] for h in HUGE])
def test_an_amount_or_quantity_beyond_the_bound_is_a_validation_failure(shop, member, network, path, body):
    """Found by review: `amount: 10**30` reached the database and answered 500 (SQLite OverflowError).
    Amounts are at most 10^15 minor units and quantities at most 10^6 (docs 5): the schema refuses
    more, with the code of every schema refusal."""
    before = entry_count(network)
    problem = assert_problem(shop.call("POST", path, body(member)), 422, "validation_failed")
    assert problem["errors"], problem
    assert entry_count(network) == before


def test_the_bounds_themselves_pass_the_schema(shop, member):
    """At the bounds the schema says nothing; the rules' points are then bounded like explicit points."""
    line = {"sku": "a", "amount": MAX_AMOUNT, "quantity": MAX_QUANTITY}
    response = shop.call("POST", "/v1/earn/quote", _earn(member, "edge", amount=MAX_AMOUNT, items=[line]))
    # 10^15 fen at the default 1 point per yuan: 10^13 points, over what one earn carries
    assert_problem(response, 422, "invalid_amount")


def test_rule_computed_points_respect_the_same_ceiling_as_explicit_points(shop, member):
    """Explicit `points` are refused above 10^12; an amount whose rule-computed points would be more
    is refused too, never awarded."""
    assert_problem(shop.call("POST", "/v1/earn", {"member_id": member, "reference": "big-pts", "points": 10**13}),
                   422, "validation_failed")
    assert_problem(shop.call("POST", "/v1/earn", _earn(member, "big-amt", amount=10**18)), 422, "validation_failed")
    # within the schema's bound, but 10^13 points at the default rate: refused by the ledger, nothing posted
    assert_problem(shop.call("POST", "/v1/earn", _earn(member, "big-amt", amount=MAX_AMOUNT)), 422, "invalid_amount")
    assert_problem(shop.call("POST", "/v1/earn/quote", _earn(member, "big-amt", amount=MAX_AMOUNT)), 422,
                   "invalid_amount")


@pytest.mark.parametrize("sizes", [{"from": 10**20, "to": 10**21}, {"from": 1, "to": 2**63},
                                   {"from": -(10**20), "to": 1}, {"from": 2**63 - 1, "to": 2**63 - 1}],
                         ids=["beyond 64 bits", "to of 2^63", "negative beyond 64 bits", "2^63-1 unsigned"])
def test_consistency_with_huge_tree_sizes_is_invalid_tree_sizes(shop, sizes):
    """docs 5: `?from=&to=`, `0 < from <= to`, both signed; else 422 `invalid_tree_sizes` (found by
    review: sizes beyond 64 bits overflowed the query and answered 500)."""
    assert_problem(shop.call("GET", "/v1/checkpoints/consistency", params=sizes), 422, "invalid_tree_sizes")


# -- NUL characters ----------------------------------------------------------------------------

NUL = "\u0000"
BODIES = [
    ("enrol customer_ref", "/v1/members", lambda m: {"phone": "+8613900001111", "customer_ref": "C" + NUL}),
    ("enrol name", "/v1/members", lambda m: {"phone": "+8613900001112", "name": "Li" + NUL}),
    ("enrol referrer", "/v1/members", lambda m: {"phone": "+8613900001113", "referrer_member_id": m + NUL}),
    ("earn member_id", "/v1/earn", lambda m: {"member_id": m + NUL, "reference": "n-1", "points": 1}),
    ("earn reference", "/v1/earn", lambda m: {"member_id": m, "reference": "n" + NUL, "points": 1}),
    ("earn item sku", "/v1/earn", lambda m: _earn(m, "n-2", items=[{"sku": "a" + NUL, "amount": 100}])),
    ("quote member_id", "/v1/earn/quote", lambda m: {"member_id": m + NUL, "reference": "n-3", "points": 1}),
    ("activity name", "/v1/activities", lambda m: {"member_id": m, "reference": "n-4", "activity": "survey" + NUL}),
    ("burn member_id", "/v1/burn", lambda m: {"member_id": NUL, "reference": "n-5", "points": 1}),
    ("reversal original_reference", "/v1/reversals",
     lambda m: {"reference": "n-6", "original_reference": "seed" + NUL}),
    ("batch event member_id", "/v1/batch",
     lambda m: {"events": [{"type": "earn", "reference": "n-7", "member_id": m + NUL, "points": 1}]}),
]


@pytest.mark.parametrize("path,body", [b[1:] for b in BODIES], ids=[b[0] for b in BODIES])
def test_a_nul_character_in_a_body_is_a_validation_failure(shop, member, network, path, body):
    """PostgreSQL refuses NUL in text (a 500 before): the door refuses it in any string of any body."""
    before = entry_count(network)
    problem = assert_problem(shop.call("POST", path, body(member)), 422, "validation_failed")
    assert "NUL" in problem["detail"], problem
    assert entry_count(network) == before


def test_an_escaped_backslash_before_u0000_is_not_a_nul(shop, member):
    """The JSON text `\\\\u0000` is a backslash and the letters u0000, which any database stores."""
    shop.ok("POST", "/v1/members", {"phone": "+8613900001114", "name": "\\u0000"})


PATHS = [
    ("GET", "/v1/transactions/%00/proof"),
    ("GET", "/v1/members/{member}%00"),
    ("GET", "/v1/members/{member}%00/history"),
    ("POST", "/v1/members/{member}%00/link-tokens"),
    ("POST", "/v1/holds/hld_%00/capture"),
    ("POST", "/v1/holds/hld_%00/void"),
    ("GET", "/v1/statements/2026-11-20%00"),
    ("GET", "/v1/transactions?cursor=%00"),
    ("GET", "/v1/members/{member}/history?cursor=a%00b"),
    ("GET", "/v1/reports?from=2026-11-01%00&to=2026-11-02"),
]


@pytest.mark.parametrize("method,path", PATHS, ids=[f"{m} {p}" for m, p in PATHS])
def test_a_nul_character_in_the_path_or_query_is_a_validation_failure(shop, member, method, path):
    problem = assert_problem(shop.call(method, path.format(member=member), {} if method == "POST" else None),
                             422, "validation_failed")
    assert "NUL" in problem["detail"], problem
