"""A request filed twice is refused, not queued again: a member adjustment's form sent again after it
was applied (its request key), a stale partner status form, and the same "mark paid" or erasure asked
with other free text. At approval, an adjustment whose key was already applied is recorded as already
applied, not audited as a second adjustment; a status the partner already has is refused."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from shared.access import audit
from shared.ledger.adjustments import adjust_member
from shared.models import Partner, PendingAction
from shared.partners.lifecycle import set_status
from tests.dashboard.conftest import BASE, post_form
from tests.dashboard.test_ledger_settlement import CYCLE
from tests.dashboard.test_members import PHONE, EMAIL, adjustments
from tests.factories import make_member, verify_ok


@pytest.fixture
def member(network, partners) -> str:
    member_id = network.enrol(partners["CoffeeCo"], phone=PHONE, email=EMAIL)["member_id"]
    network.earn(partners["CoffeeCo"], member_id, "e1", points=120)
    return member_id


@pytest.fixture
def settled(network, clock, partners) -> dict:
    """CoffeeCo issues points that a member spends at BookMart; the cycle is settled: CoffeeCo pays."""
    coffee, book = partners["CoffeeCo"], partners["BookMart"]
    member_id = make_member(network, coffee, also_linked_to=(book,))
    network.earn(coffee, member_id, "coffee-1", points=500)
    clock.advance(minutes=5)
    network.burn(book, member_id, "book-1", 300)
    clock.advance(days=1)
    network.settle(CYCLE)
    return {"coffee": coffee, "book": book}


def audited(network, action: str, target: str | None = None) -> list[dict]:
    return network.tx(lambda tx: audit.page(tx, action=action, target=target), readonly=True)[0]


def requests(network) -> list[PendingAction]:
    return network.tx(lambda tx: tx.session.scalars(select(PendingAction).order_by(PendingAction.id)).all(),
                      readonly=True)


def approve(client, pending_id: int):
    return post_form(client, f"{BASE}/approvals/{pending_id}/approve", page=f"{BASE}/approvals")


def form_key(client, member_id: str) -> str:
    """The request key the member page puts in its adjustment form, as a browser would send it."""
    html = client.get(f"{BASE}/members/{member_id}").text
    return re.search(r'name="request_key" value="([^"]+)"', html).group(1)


# -- 1. a member adjustment's form sent again --------------------------------------------------------

def test_an_adjustment_form_sent_again_after_approval_is_refused_as_already_done(network, client_as, member):
    maker, checker = client_as("operator"), client_as("checker")
    page = f"{BASE}/members/{member}"
    form = {"points": "25", "reason": "goodwill", "request_key": form_key(maker, member)}
    assert post_form(maker, f"{page}/adjustments", form, page=page).status_code == 303
    [first] = requests(network)
    assert approve(checker, first.id).status_code == 303
    assert network.balance(member)["available"] == 145

    again = post_form(maker, f"{page}/adjustments", form, page=page)  # browser Back, then Submit
    assert again.status_code == 409 and 'data-code="request_already_done"' in again.text, again.text
    assert "already done" in again.text
    assert [r.id for r in requests(network)] == [first.id]
    assert network.balance(member)["available"] == 145 and adjustments(network, member) == 1
    assert len(audited(network, "member_adjustment", member)) == 1
    verify_ok(network)


def test_an_adjustment_form_sent_again_while_it_waits_is_refused_even_with_other_points(network, client_as, member):
    maker = client_as("operator")
    page = f"{BASE}/members/{member}"
    key = form_key(maker, member)
    assert post_form(maker, f"{page}/adjustments", {"points": "25", "reason": "goodwill", "request_key": key},
                     page=page).status_code == 303
    again = post_form(maker, f"{page}/adjustments", {"points": "26", "reason": "goodwill!", "request_key": key},
                      page=page)
    assert again.status_code == 409 and 'data-code="approval_already_pending"' in again.text, again.text
    assert "already waiting" in again.text and len(requests(network)) == 1


def test_an_adjustment_without_a_request_key_is_refused(network, client_as, member):
    maker = client_as("operator")
    page = f"{BASE}/members/{member}"
    for _ in range(2):
        answer = post_form(maker, f"{page}/adjustments", {"points": "25", "reason": "goodwill"}, page=page)
        assert answer.status_code == 422 and 'data-code="validation_failed"' in answer.text
        assert "request key" in answer.text
    assert requests(network) == [] and audited(network, "approval.requested") == []


def test_an_approval_whose_key_was_already_applied_is_recorded_as_already_applied(network, client_as, member):
    maker, checker = client_as("operator"), client_as("checker")
    page = f"{BASE}/members/{member}"
    key = form_key(maker, member)
    assert post_form(maker, f"{page}/adjustments", {"points": "25", "reason": "goodwill", "request_key": key},
                     page=page).status_code == 303
    [waiting] = requests(network)
    # the same key posted meanwhile by another way (the pointsnet command, an earlier request)
    network.tx(lambda tx: adjust_member(tx, member, 25, reason="goodwill", request_key=key))
    assert audited(network, "member_adjustment", member) == []

    answer = approve(checker, waiting.id)
    assert answer.status_code == 303 and "message=already_applied" in answer.headers["location"]
    assert "already applied" in checker.get(answer.headers["location"]).text
    [row] = requests(network)
    assert row.status == "approved" and '"already_applied": true' in row.outcome
    assert audited(network, "member_adjustment", member) == []  # no second adjustment in the audit log
    [approved] = audited(network, "approval.already_applied", member)
    assert approved["user"] == "checker@example.org" and approved["detail"]["pending_id"] == waiting.id
    assert network.balance(member)["available"] == 145 and adjustments(network, member) == 1
    verify_ok(network)


def test_without_four_eyes_a_form_sent_twice_posts_and_is_audited_once(network, client_as, member):
    network.settings.four_eyes_actions = frozenset({"member_erasure"})
    client = client_as("operator")
    page = f"{BASE}/members/{member}"
    form = {"points": "30", "reason": "goodwill", "request_key": form_key(client, member)}
    first = post_form(client, f"{page}/adjustments", form, page=page)
    assert first.status_code == 303 and "message=done" in first.headers["location"]
    again = post_form(client, f"{page}/adjustments", form, page=page)
    assert again.status_code == 409 and 'data-code="request_already_done"' in again.text
    assert network.balance(member)["available"] == 150 and adjustments(network, member) == 1
    assert len(audited(network, "member_adjustment", member)) == 1


# -- 2. a stale or contradictory partner status form ---------------------------------------------------

def status_of(network, partner_id: str) -> str:
    return network.tx(lambda tx: tx.session.get(Partner, partner_id).status, readonly=True)


def test_a_stale_suspend_form_is_refused_not_queued(network, client_as, partners):
    coffee = partners["CoffeeCo"]
    maker, checker = client_as("operator"), client_as("checker")
    page = f"{BASE}/partners/{coffee}"
    assert post_form(maker, f"{page}/status", {"status": "suspended"}, page=page).status_code == 303
    assert approve(checker, requests(network)[0].id).status_code == 303
    assert status_of(network, coffee) == "suspended"

    stale = post_form(maker, f"{page}/status", {"status": "suspended"}, page=page)
    assert stale.status_code == 409 and 'data-code="partner_already_suspended"' in stale.text, stale.text
    assert len(requests(network)) == 1
    active = post_form(maker, f"{BASE}/partners/{partners['BookMart']}/status", {"status": "active"}, page=page)
    assert active.status_code == 409 and 'data-code="partner_already_active"' in active.text
    assert len(requests(network)) == 1 and len(audited(network, "partner_suspension")) == 1


def test_a_status_the_partner_already_has_at_approval_fails_the_request(network, client_as, partners):
    coffee = partners["CoffeeCo"]
    maker, checker = client_as("operator"), client_as("checker")
    page = f"{BASE}/partners/{coffee}"
    assert post_form(maker, f"{page}/status", {"status": "suspended"}, page=page).status_code == 303
    network.tx(lambda tx: set_status(tx, coffee, "suspended"))  # `pointsnet partners suspend` meanwhile
    [waiting] = requests(network)
    answer = approve(checker, waiting.id)
    assert answer.status_code == 409 and 'data-code="partner_already_suspended"' in answer.text
    [row] = requests(network)
    assert row.status == "failed" and "partner_already_suspended" in row.outcome
    assert audited(network, "partner_suspension") == []


def test_only_one_status_request_per_partner_waits(network, client_as, partners):
    coffee = partners["CoffeeCo"]
    maker, other = client_as("operator"), client_as("checker")
    page = f"{BASE}/partners/{coffee}"
    assert post_form(maker, f"{page}/status", {"status": "suspended"}, page=page).status_code == 303
    [waiting] = requests(network)
    # a reactivation beside the waiting suspension (the partner is still active: refused either way)
    contrary = post_form(other, f"{page}/status", {"status": "active"}, page=page)
    assert contrary.status_code == 409 and len(requests(network)) == 1
    # the partner page says a request waits, and offers no second one
    html = maker.get(page).text
    assert 'data-testid="status-pending"' in html and f"#{waiting.id}" in html
    assert 'name="status" value="suspended"' not in html


def test_a_reactivation_beside_a_waiting_suspension_is_refused(network, client_as, partners):
    coffee = partners["CoffeeCo"]
    maker, other = client_as("operator"), client_as("checker")
    page = f"{BASE}/partners/{coffee}"
    assert post_form(maker, f"{page}/status", {"status": "suspended"}, page=page).status_code == 303
    network.tx(lambda tx: set_status(tx, coffee, "suspended"))  # suspended meanwhile by the command line
    contrary = post_form(other, f"{page}/status", {"status": "active"}, page=page)
    assert contrary.status_code == 409 and 'data-code="approval_already_pending"' in contrary.text, contrary.text
    assert len(requests(network)) == 1


# -- 3. the same request with other free text ------------------------------------------------------------

def test_mark_paid_with_another_bank_reference_is_the_same_request(client_as, network, settled):
    coffee = settled["coffee"]
    finance, operator = client_as("finance"), client_as("operator")
    page = f"{BASE}/settlement/{CYCLE}"
    path = f"{BASE}/settlement/{CYCLE}/parties/{coffee}/paid"
    assert post_form(finance, path, {"bank_reference": "BANK-1"}, page=page).status_code == 303
    again = post_form(operator, path, {"bank_reference": "BANK-2"}, page=page)
    assert again.status_code == 409 and 'data-code="approval_already_pending"' in again.text
    assert len(requests(network)) == 1


def test_an_erasure_asked_again_with_another_reason_is_the_same_request(network, client_as, member):
    maker, other = client_as("operator"), client_as("checker")
    page = f"{BASE}/members/{member}"
    assert post_form(maker, f"{page}/erasure", {"reason": "ticket 1"}, page=page).status_code == 303
    again = post_form(other, f"{page}/erasure", {"reason": "ticket 2"}, page=page)
    assert again.status_code == 409 and 'data-code="approval_already_pending"' in again.text
    assert len(requests(network)) == 1
