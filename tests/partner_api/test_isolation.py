"""Two partners: across partners every route answers 404 exactly as for an id that does not
exist, and never data; linking needs the member's consent (a valid, unused, unexpired token)."""

from __future__ import annotations

import re

import pytest

from tests.partner_api.conftest import assert_problem, enrol, entry_count

PHONE = "+8613811112222"


@pytest.fixture
def world(partners, network):
    a, b = partners("Alpha Books"), partners("Beta Tea")
    member = enrol(a, phone=PHONE, customer_ref="alpha-1")
    a.ok("POST", "/v1/earn", {"member_id": member, "reference": "a-earn", "amount": 50000, "currency": "CNY"})
    hold = a.ok("POST", "/v1/holds", {"member_id": member, "reference": "a-hold", "points": 10})["hold_id"]
    b_member = enrol(b)
    b.ok("POST", "/v1/earn", {"member_id": b_member, "reference": "b-earn", "points": 40})
    return a, b, member, hold, b_member


def _same_as_nonexistent(response_real, response_fake, real_id: str, fake_id: str, status: int, code: str):
    """The answer for someone else's id is the answer for an id that does not exist (ids aside)."""
    real = assert_problem(response_real, status, code)
    fake = assert_problem(response_fake, status, code)
    assert {k: (re.sub(re.escape(real_id), "<id>", v) if isinstance(v, str) else v) for k, v in real.items()} == \
        {k: (re.sub(re.escape(fake_id), "<id>", v) if isinstance(v, str) else v) for k, v in fake.items()}


ROUTES = [
    ("GET", "/v1/members/{member}", None, "unknown_member"),
    ("GET", "/v1/members/{member}/history", None, "unknown_member"),
    ("POST", "/v1/members/{member}/link-tokens", None, "unknown_member"),
    ("POST", "/v1/members/{member}/unlink", None, "unknown_member"),
    ("POST", "/v1/earn", {"member_id": "{member}", "reference": "x1", "points": 5}, "unknown_member"),
    ("POST", "/v1/earn/quote", {"member_id": "{member}", "reference": "x2", "amount": 1000}, "unknown_member"),
    ("POST", "/v1/burn", {"member_id": "{member}", "reference": "x3", "points": 5}, "unknown_member"),
    ("POST", "/v1/holds", {"member_id": "{member}", "reference": "x4", "points": 5}, "unknown_member"),
    ("POST", "/v1/holds/{hold}/capture", {"reference": "x5"}, "unknown_hold"),
    ("POST", "/v1/holds/{hold}/void", {"reference": "x6"}, "unknown_hold"),
    ("POST", "/v1/reversals", {"reference": "x7", "original_reference": "{reference}"}, "unknown_reference"),
]


def _fill(value, member, hold, reference):
    if isinstance(value, str):
        return value.format(member=member, hold=hold, reference=reference)
    if isinstance(value, dict):
        return {k: _fill(v, member, hold, reference) for k, v in value.items()}
    return value


@pytest.mark.parametrize("method,path,body,code", ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_every_route_across_partners_answers_404_never_data(world, network, method, path, body, code):
    a, b, member, hold, _ = world
    before = entry_count(network)
    balance = a.ok("GET", f"/v1/members/{member}")["balance"]
    real = b.call(method, _fill(path, member, hold, "a-earn"), _fill(body, member, hold, "a-earn"))
    fake_member, fake_hold = "mem_" + "0" * 26, "hold_" + "0" * 26
    fake = b.call(method, _fill(path, fake_member, fake_hold, "no-such-ref"),
                  _fill(body, fake_member, fake_hold, "no-such-ref"))
    _same_as_nonexistent(real, fake, {"unknown_member": member, "unknown_hold": hold}.get(code, "a-earn"),
                         {"unknown_member": fake_member, "unknown_hold": fake_hold}.get(code, "no-such-ref"),
                         404, code)
    assert "Alpha" not in real.text and PHONE not in real.text
    assert entry_count(network) == before
    assert a.ok("GET", f"/v1/members/{member}")["balance"] == balance


def test_the_hold_is_still_open_for_its_owner(world):
    a, b, member, hold, _ = world
    assert_problem(b.call("POST", f"/v1/holds/{hold}/capture", {}), 404, "unknown_hold")
    captured = a.ok("POST", f"/v1/holds/{hold}/capture", {"reference": "a-cap"})
    assert captured["captured"] == 10


def test_transactions_list_only_own_entries(world, network):
    a, b, member, hold, b_member = world
    seen_b = b.ok("GET", "/v1/transactions")
    assert {t["reference"] for t in seen_b["transactions"]} == {"b-earn"}
    assert all(t["member_id"] == b_member for t in seen_b["transactions"])
    seen_a = a.ok("GET", "/v1/transactions")
    assert {t["reference"] for t in seen_a["transactions"]} == {"a-earn", "a-hold"}
    # pagination never leaks: page through with limit=1
    refs, cursor = [], None
    while True:
        page = b.ok("GET", "/v1/transactions", params={"limit": 1, **({"cursor": cursor} if cursor else {})})
        refs += [t["reference"] for t in page["transactions"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert refs == ["b-earn"]


def test_a_referral_bonus_does_not_show_an_unlinked_referrers_id(partners, network):
    """The referee, linked to Alpha and Beta, earns at Beta, whose programme pays its referrer a
    bonus: Beta's transactions list that bonus with member_id null while the referrer is not linked
    to Beta (never its id: ARCHITECTURE.md, only members linked to it), and with it once it is."""
    from shared.rules.store import set_rules

    alpha, beta = partners("Alpha Books"), partners("Beta Tea")
    network.tx(lambda tx: set_rules(tx, beta.partner_id, "referral: {bonus_points: 50}\n"))
    referrer = enrol(alpha)
    referee = enrol(alpha, referrer_member_id=referrer)
    other_referee = enrol(alpha, referrer_member_id=referrer)
    for member in (referee, other_referee):
        token = alpha.ok("POST", f"/v1/members/{member}/link-tokens", status=201)["link_token"]
        assert beta.ok("POST", "/v1/members", {"link_token": token})["member_id"] == member
    earned = beta.ok("POST", "/v1/earn", {"member_id": referee, "reference": "b-1", "amount": 10_000,
                                          "currency": "CNY"})
    assert earned["referral_bonus"]["points"] == 50
    listed = beta.ok("GET", "/v1/transactions")["transactions"]
    assert sorted((t["kind"], t["member_id"] or "", t["points"]) for t in listed) == [("bonus", "", 50),
                                                                                        ("earn", referee, 100)]
    assert referrer not in str(listed)
    # once the referrer links to Beta (its consent), Beta sees whose bonus it was
    token = alpha.ok("POST", f"/v1/members/{referrer}/link-tokens", status=201)["link_token"]
    beta.ok("POST", "/v1/members", {"link_token": token})
    beta.ok("POST", "/v1/earn", {"member_id": other_referee, "reference": "b-2", "amount": 10_000, "currency": "CNY"})
    listed = beta.ok("GET", "/v1/transactions")["transactions"]
    assert [(t["kind"], t["member_id"]) for t in listed if t["kind"] == "bonus"] == [("bonus", referrer)] * 2


def test_a_merged_duplicates_id_stays_on_the_partners_own_transactions(partners, network):
    """Merging moves the duplicate's link to the survivor; the partner's earns for the duplicate
    still show the id it posted them with (a member it was linked to), page after page."""
    from shared.programme.merge import merge_members

    alpha = partners("Alpha Books")
    survivor, duplicate = enrol(alpha), enrol(alpha)
    alpha.ok("POST", "/v1/earn", {"member_id": duplicate, "reference": "a-1", "points": 10})
    alpha.ok("POST", "/v1/earn", {"member_id": survivor, "reference": "a-2", "points": 20})
    network.tx(lambda tx: merge_members(tx, survivor, duplicate))
    listed = [t for t in alpha.ok("GET", "/v1/transactions")["transactions"] if t["kind"] == "earn"]
    assert [(t["reference"], t["member_id"]) for t in listed] == [("a-1", duplicate), ("a-2", survivor)]
    first = alpha.ok("GET", "/v1/transactions", params={"limit": 1})["transactions"]
    assert [(t["reference"], t["member_id"]) for t in first] == [("a-1", duplicate)]


def test_a_batch_across_partners_refuses_each_event(world, network):
    a, b, member, _, _ = world
    before = entry_count(network)
    answer = b.ok("POST", "/v1/batch", {"events": [
        {"type": "earn", "reference": "y1", "member_id": member, "points": 5},
        {"type": "burn", "reference": "y2", "member_id": member, "points": 5},
        {"type": "reversal", "reference": "y3", "original_reference": "a-earn"}]})
    assert answer["accepted"] == 0
    assert [r["problem"]["code"] for r in answer["results"]] == ["unknown_member", "unknown_member",
                                                                 "unknown_reference"]
    assert entry_count(network) == before


def test_the_partner_is_known_only_from_its_key(world):
    a, b, member, _, _ = world
    response = b.call("POST", "/v1/earn", {"member_id": member, "reference": "z", "points": 5,
                                           "partner_id": a.partner_id})
    assert_problem(response, 422, "validation_failed")
    response = b.call("GET", f"/v1/members/{member}", params={"partner_id": a.partner_id})
    assert_problem(response, 404, "unknown_member")


# -- consent --------------------------------------------------------------------------------

def test_linking_without_a_token_is_refused(world, network):
    a, b, member, _, _ = world
    for contact in ({"phone": PHONE}, {"phone": "+86 138 1111 2222"}):
        response = b.call("POST", "/v1/members", {**contact, "customer_ref": "beta-9"})
        body = assert_problem(response, 409, "consent_required")
        assert member not in response.text and "Alpha" not in response.text, body
    assert_problem(b.call("GET", f"/v1/members/{member}"), 404, "unknown_member")


def test_an_email_enrolled_elsewhere_needs_consent(partners):
    a, b = partners("A"), partners("B")
    member = enrol(a, email="Li.Lei@Example.com")
    response = b.call("POST", "/v1/members", {"email": "li.lei@example.com"})
    assert_problem(response, 409, "consent_required")
    assert member not in response.text


def test_a_customer_ref_names_one_member_per_partner(partners):
    """Found by the stateful Schemathesis walk: a second member under a used customer_ref was a 500."""
    a = partners("A")
    first = a.ok("POST", "/v1/members", {"phone": "+8613700000001", "customer_ref": "C-1"})["member_id"]
    response = a.call("POST", "/v1/members", {"phone": "+8613700000002", "customer_ref": "C-1"})
    assert_problem(response, 409, "customer_ref_taken")
    again = a.ok("POST", "/v1/members", {"phone": "+8613700000001", "customer_ref": "C-1"})  # the same member
    assert again["member_id"] == first and again["created"] is False


def test_an_already_linked_member_cannot_take_another_members_customer_ref(partners):
    """Found by review: enrolling again a member already linked to you, with the customer_ref of
    another of your members, answered 200 and silently ignored the customer_ref."""
    a = partners("A")
    enrol(a, phone="+8613811110001", customer_ref="C-1")
    enrol(a, phone="+8613811110002", customer_ref="C-2")
    assert_problem(a.call("POST", "/v1/members", {"phone": "+8613811110002", "customer_ref": "C-1"}), 409,
                   "customer_ref_taken")
    assert_problem(a.call("POST", "/v1/members", {"phone": "+8613811110003", "customer_ref": "C-1"}), 409,
                   "customer_ref_taken")  # C-1 is still the first member's


def test_a_linked_member_without_a_customer_ref_gets_the_one_given(partners):
    a = partners("A")
    member = enrol(a, phone="+8613811110004")
    again = a.ok("POST", "/v1/members", {"phone": "+8613811110004", "customer_ref": "C-4"})
    assert (again["member_id"], again["created"]) == (member, False)
    assert_problem(a.call("POST", "/v1/members", {"phone": "+8613811110005", "customer_ref": "C-4"}), 409,
                   "customer_ref_taken")  # now the member's
    assert a.ok("POST", "/v1/members", {"phone": "+8613811110004", "customer_ref": "C-4"})["member_id"] == member
    assert a.ok("POST", "/v1/members", {"phone": "+8613811110004"})["member_id"] == member  # none given: kept


def test_a_linked_member_keeps_its_customer_ref_and_another_is_refused(partners, network):
    """docs 4: a member has one customer_ref of yours; another one for it answers 409
    `customer_ref_mismatch` rather than silently keeping or replacing the one you gave first."""
    a, b = partners("A"), partners("B")
    member = enrol(a, phone="+8613811110006", customer_ref="C-6")
    problem = assert_problem(a.call("POST", "/v1/members", {"phone": "+8613811110006", "customer_ref": "C-7"}), 409,
                             "customer_ref_mismatch")
    assert "C-6" not in problem["detail"], problem  # refusals are stored: no customer data in them
    assert a.ok("POST", "/v1/members", {"phone": "+8613811110006", "customer_ref": "C-6"})["member_id"] == member
    enrol(a, phone="+8613811110007", customer_ref="C-7")  # C-7 was not given to the member
    # the same through a link token: a member linked to you again by its consent keeps its customer_ref
    token = a.ok("POST", f"/v1/members/{member}/link-tokens")["link_token"]
    assert b.ok("POST", "/v1/members", {"link_token": token, "customer_ref": "C-6"})["member_id"] == member
    token = b.ok("POST", f"/v1/members/{member}/link-tokens")["link_token"]
    assert_problem(a.call("POST", "/v1/members", {"link_token": token, "customer_ref": "C-8"}), 409,
                   "customer_ref_mismatch")


def test_linking_with_an_invalid_token_is_refused(world):
    a, b, member, _, _ = world
    assert_problem(b.call("POST", "/v1/members", {"link_token": "not-a-token"}), 409, "invalid_link_token")
    assert_problem(b.call("GET", f"/v1/members/{member}"), 404, "unknown_member")


def test_a_token_links_once_and_then_the_member_is_visible(world, partners, network):
    a, b, member, _, _ = world
    token = a.ok("POST", f"/v1/members/{member}/link-tokens", status=201)["link_token"]
    linked = b.call("POST", "/v1/members", {"link_token": token, "customer_ref": "beta-7"})
    assert linked.status_code == 200, linked.text
    assert linked.json()["member_id"] == member and linked.json()["linked"] and not linked.json()["created"]
    view = b.ok("GET", f"/v1/members/{member}")
    assert view["balance"] == a.ok("GET", f"/v1/members/{member}")["balance"]
    history = b.ok("GET", f"/v1/members/{member}/history")
    assert {m["partner"] for m in history["movements"]} == {"Alpha Books"}
    assert "a-earn" not in str(history) and "50000" not in str(history)  # no purchase details of others
    # a used token is refused, whoever presents it
    c = partners("Gamma Gas")
    assert_problem(c.call("POST", "/v1/members", {"link_token": token}), 409, "invalid_link_token")
    assert_problem(b.call("POST", "/v1/members", {"link_token": token}), 409, "invalid_link_token")
    assert_problem(c.call("GET", f"/v1/members/{member}"), 404, "unknown_member")


def test_an_expired_token_is_refused(world, clock):
    a, b, member, _, _ = world
    token = a.ok("POST", f"/v1/members/{member}/link-tokens", status=201)["link_token"]
    clock.advance(minutes=11)
    assert_problem(b.call("POST", "/v1/members", {"link_token": token}), 409, "invalid_link_token")
    assert_problem(b.call("GET", f"/v1/members/{member}"), 404, "unknown_member")


def test_a_refused_link_is_not_stored_against_a_later_valid_token(world):
    """Consent refusals are business refusals: a new Idempotency-Key is a new attempt."""
    a, b, member, _, _ = world
    assert_problem(b.call("POST", "/v1/members", {"phone": PHONE}), 409, "consent_required")
    token = a.ok("POST", f"/v1/members/{member}/link-tokens", status=201)["link_token"]
    assert b.ok("POST", "/v1/members", {"link_token": token})["member_id"] == member


def test_a_member_withdraws_its_consent_from_one_partner(world, network):
    """POST /v1/members/{id}/unlink: refused while the partner holds an open hold for the member; then the
    link goes (replayed to a retry of its key); the member is one the partner cannot see, its own past
    entries stay listed (without the member's id), and linking it again needs the member's consent."""
    a, b, member, hold, _ = world
    b.ok("POST", "/v1/members", {"link_token": a.ok("POST", f"/v1/members/{member}/link-tokens")["link_token"]})
    spare = a.ok("POST", f"/v1/members/{member}/link-tokens")["link_token"]  # never used
    enrolment = {"phone": PHONE, "customer_ref": "alpha-1"}  # kept for its key: the contact and ref hashed
    assert a.ok("POST", "/v1/members", enrolment, idempotency_key="E-1")["member_id"] == member
    balance = a.ok("GET", f"/v1/members/{member}")["balance"]
    refused = assert_problem(a.call("POST", f"/v1/members/{member}/unlink", idempotency_key="U-1"), 409, "holds_open")
    assert refused["open_holds"] == 1
    a.ok("POST", f"/v1/holds/{hold}/void", {})

    first = a.call("POST", f"/v1/members/{member}/unlink", idempotency_key="U-2")
    assert first.status_code == 200 and first.json() == {"member_id": member, "linked": False}, first.text
    again = a.call("POST", f"/v1/members/{member}/unlink", idempotency_key="U-2")
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert_problem(a.call("POST", f"/v1/members/{member}/unlink"), 404, "unknown_member")  # a new key: gone
    # the enrolment kept for its key holds the hashes no more: its retry is refused, not answered "linked"
    assert_problem(a.call("POST", "/v1/members", enrolment, idempotency_key="E-1"), 422, "idempotency_key_reused")
    for method, path, body in (("GET", f"/v1/members/{member}", None), ("GET", f"/v1/members/{member}/history", None),
                               ("POST", "/v1/earn", {"member_id": member, "reference": "a-earn-2", "points": 5}),
                               ("POST", f"/v1/members/{member}/link-tokens", None)):
        assert_problem(a.call(method, path, body), 404, "unknown_member")
    listed = a.ok("GET", "/v1/transactions")["transactions"]
    assert [(t["kind"], t["reference"]) for t in listed] == [("earn", "a-earn"), ("hold", "a-hold"), ("void", None)]
    assert {t["member_id"] for t in listed} == {None}  # its own entries stay; the member's id is shown no more
    # and it can still reverse them (a return of goods): by its reference, no link needed; the member's
    # balance is not its to see any more: null in the answer, in a batch's result too
    reversed_ = a.ok("POST", "/v1/reversals", {"reference": "a-rev", "original_reference": "a-earn", "points": 5})
    assert (reversed_["points"], reversed_["balance"]) == (5, None)
    [result] = a.ok("POST", "/v1/batch", {"events": [
        {"type": "reversal", "reference": "a-rev-2", "original_reference": "a-earn", "points": 1}]})["results"]
    assert (result["status"], result["result"]["points"], result["result"]["balance"]) == (200, 1, None)
    # the member's points (the hold's 10 released, the 5 and 1 reversed) and its link to b are untouched
    assert b.ok("GET", f"/v1/members/{member}")["balance"] == {"available": balance["available"] + 4, "held": 0}
    assert_problem(b.call("POST", "/v1/members", {"link_token": spare}), 409, "invalid_link_token")
    # linking again: the contact alone needs consent, a token of b links it, under the same customer_ref
    assert_problem(a.call("POST", "/v1/members", {"phone": PHONE}), 409, "consent_required")
    token = b.ok("POST", f"/v1/members/{member}/link-tokens")["link_token"]
    assert a.ok("POST", "/v1/members", {"link_token": token, "customer_ref": "alpha-1"})["member_id"] == member
    assert a.ok("GET", f"/v1/members/{member}")["balance"]["available"] == balance["available"] + 4
    # linked again, its answers show the balance again
    assert a.ok("POST", "/v1/reversals", {"reference": "a-rev-3", "original_reference": "a-earn", "points": 1})[
        "balance"] == {"available": balance["available"] + 3, "held": 0}
