"""Members pages over HTTP: search through the blind index, masked personal data and its audited
full view, adjustments and erasure through maker-checker, roles and CSRF."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from shared.access import audit
from shared.models import Entry, Member, PendingAction
from tests.dashboard.conftest import BASE, post_form
from tests.factories import verify_ok

PHONE = "+8613912345678"
EMAIL = "Li.Wei@Example.org"


@pytest.fixture
def member(network, partners) -> str:
    coffee = partners["CoffeeCo"]
    member_id = network.enrol(coffee, phone=PHONE, email=EMAIL, name="Li Wei")["member_id"]
    network.earn(coffee, member_id, "e1", points=120)
    return member_id


def audited(network, action: str, target: str | None = None) -> list[dict]:
    return network.tx(lambda tx: audit.page(tx, action=action, target=target), readonly=True)[0]


def pending_id(client) -> str:
    return client.get(f"{BASE}/approvals").text.split('data-pending="')[1].split('"')[0]


def approve(client, pending: str):
    return post_form(client, f"{BASE}/approvals/{pending}/approve", page=f"{BASE}/approvals")


def search(client, query: str, by: str = "auto"):
    """The search form, sent as the browser sends it: a POST with the session's CSRF token, so what
    was typed is in the body, never in the URL (docs/dashboard.md, "Members")."""
    return post_form(client, f"{BASE}/members", {"q": query, "by": by}, page=f"{BASE}/members")


def adjustments(network, member_id: str) -> int:
    return network.tx(lambda tx: tx.session.scalar(select(func.count()).select_from(Entry).where(
        Entry.kind == "adjustment", Entry.member_id == member_id)), readonly=True)


@pytest.mark.parametrize("query, by", [("139 1234 5678", "phone"), (PHONE, "auto"), ("li.wei@example.org", "email"),
                                       ("LI.WEI@EXAMPLE.ORG", "auto")])
def test_search_finds_a_member_through_the_blind_index(client_as, member, query, by):
    answer = search(client_as("finance"), query, by)
    assert answer.status_code == 303 and answer.headers["location"] == f"{BASE}/members/{member}"


def test_search_by_id_and_not_found(client_as, member):
    client = client_as("operator")
    assert client.get(f"{BASE}/members", params={"q": member}).headers["location"] == f"{BASE}/members/{member}"
    assert search(client, member).headers["location"] == f"{BASE}/members/{member}"
    missing = search(client, "+8613900000000")
    assert missing.status_code == 404 and 'data-code="unknown_member"' in missing.text
    unreadable = search(client, "12", "phone")
    assert unreadable.status_code == 422 and 'data-code="invalid_contact"' in unreadable.text


def test_a_merged_member_is_found_as_its_survivor_by_id_too(network, client_as, partners, member):
    """docs/dashboard.md: a member merged into another is found as the member it was merged into."""
    from shared.programme.merge import merge_members

    duplicate = network.enrol(partners["CoffeeCo"], phone="+8613912345679")["member_id"]
    network.tx(lambda tx: merge_members(tx, member, duplicate))
    client = client_as("operator")
    for query in ("+8613912345679", duplicate):
        answer = search(client, query)
        assert answer.status_code == 303 and answer.headers["location"] == f"{BASE}/members/{member}", query
    by_link = client.get(f"{BASE}/members", params={"q": duplicate})  # a link by id works as a GET too
    assert by_link.status_code == 303 and by_link.headers["location"] == f"{BASE}/members/{member}"


def test_search_never_decrypts(network, client_as, member, monkeypatch):
    """The lookup uses keyed blind indexes only: decryption is not called while searching."""
    from shared.members.privacy import Keyring

    def refuse(*args, **kwargs):
        raise AssertionError("search decrypted personal data")

    client = client_as("finance")
    monkeypatch.setattr(Keyring, "decrypt", refuse)
    assert search(client, PHONE).status_code == 303
    assert search(client, EMAIL).status_code == 303


def test_the_member_page_masks_personal_data_and_shows_balance_lots_and_transactions(client_as, member):
    for who in ("operator", "finance"):
        page = client_as(who).get(f"{BASE}/members/{member}").text
        assert PHONE not in page and "li.wei@example.org" not in page and "Li Wei" not in page
        assert "+86*******5678" in page and "l***@example.org" in page and "L***" in page
        assert 'data-testid="available"' in page and "120" in page
        assert 'data-kind="earn"' in page
    lots = client_as("finance").get(f"{BASE}/members/{member}/lots").text
    assert lots.count("data-lot=") == 1 and "2027-" in lots  # expiry shown


def test_lots_and_transactions_paginate(network, client_as, partners, member):
    for n in range(4):
        network.earn(partners["CoffeeCo"], member, f"more-{n}", points=10)
    client = client_as("finance")
    page = client.get(f"{BASE}/members/{member}?limit=2").text
    assert page.count("data-entry=") == 2 and "1–2 of 5" in page
    lots = client.get(f"{BASE}/members/{member}/lots?limit=3&offset=3").text
    assert lots.count("data-lot=") == 2 and "4–5 of 5" in lots


def test_full_personal_data_is_for_operators_and_every_view_is_audited(network, client_as, member):
    operator = client_as("operator")
    page = f"{BASE}/members/{member}"
    shown = post_form(operator, f"{page}/personal-data", page=page)
    assert shown.status_code == 200 and PHONE in shown.text and "li.wei@example.org" in shown.text
    post_form(operator, f"{page}/personal-data", page=page)
    views = audited(network, "member.personal_data_viewed", member)
    assert len(views) == 2 and views[0]["user"] == "op@example.org"
    assert views[0]["detail"] == {"fields": ["phone", "email", "name"]}
    finance = client_as("finance")
    assert 'data-testid="reveal"' not in finance.get(page).text
    refused = post_form(finance, f"{page}/personal-data", page=page)
    assert refused.status_code == 403 and PHONE not in refused.text
    assert len(audited(network, "member.personal_data_viewed", member)) == 2


def test_the_unmasked_pages_paging_links_lead_to_the_masked_member_page(network, client_as, partners, member):
    """The page shown in answer to "Show full personal data" (a POST to …/personal-data) had paging links
    that carried only a query string, so they resolved against that address: a GET there is 405 (until
    2026-12-07). They name the member page now, which shows the data masked again."""
    import re

    for n in range(60):
        network.earn(partners["CoffeeCo"], member, f"many-{n}", points=1)
    operator = client_as("operator")
    page = f"{BASE}/members/{member}"
    shown = post_form(operator, f"{page}/personal-data", page=page)
    assert shown.status_code == 200 and PHONE in shown.text
    [following] = {link.replace("&amp;", "&") for link in re.findall(r'href="([^"]*offset=50[^"]*)"', shown.text)}
    assert following.startswith(f"{page}?"), following
    answer = operator.get(following)
    assert answer.status_code == 200 and answer.text.count("data-entry=") > 0 and PHONE not in answer.text


def test_csrf_is_required_for_every_member_form(network, client_as, member):
    client = client_as("operator")
    for path, data in (("personal-data", {}), ("adjustments", {"points": "5", "reason": "x"}),
                       ("erasure", {"reason": "x"})):
        answer = client.post(f"{BASE}/members/{member}/{path}", data=data | {"csrf_token": "wrong"},
                             headers={"origin": "http://testserver"})
        assert answer.status_code == 403 and 'data-code="csrf_rejected"' in answer.text
        assert PHONE not in answer.text
    assert audited(network, "member.personal_data_viewed") == [] and audited(network, "approval.requested") == []


def test_an_adjustment_needs_a_second_operator_and_applies_exactly_once(network, client_as, member):
    maker, checker = client_as("operator"), client_as("checker")
    page = f"{BASE}/members/{member}"
    answer = post_form(maker, f"{page}/adjustments", {"points": "-20", "reason": "duplicate earn",
                                                      "request_key": "form-1"}, page=page)
    assert answer.status_code == 303 and "message=requested" in answer.headers["location"]
    assert network.balance(member)["available"] == 120 and adjustments(network, member) == 0
    pending = pending_id(maker)
    refused = approve(maker, pending)
    assert refused.status_code == 409 and 'data-code="four_eyes_required"' in refused.text
    assert approve(checker, pending).status_code == 303
    assert network.balance(member)["available"] == 100
    again = approve(checker, pending)
    assert again.status_code == 409 and 'data-code="action_not_pending"' in again.text
    assert network.balance(member)["available"] == 100 and adjustments(network, member) == 1
    [done] = audited(network, "member_adjustment", member)
    assert done["user"] == "checker@example.org" and done["detail"]["params"]["reason"] == "duplicate earn"
    assert [e["user"] for e in audited(network, "approval.requested", member)] == ["op@example.org"]
    verify_ok(network)


def test_a_requests_reason_in_chinese_reads_as_written_on_approvals_and_audit(network, client_as, member):
    """The checker reads what is asked in the words it was asked in (``|tojson`` wrote every non-ASCII
    character as a \\u escape), and HTML stays escaped."""
    maker, checker = client_as("operator"), client_as("checker")
    page = f"{BASE}/members/{member}"
    reason = "客户投诉退回积分 <b>&"
    post_form(maker, f"{page}/adjustments", {"points": "-20", "reason": reason, "request_key": "form-zh"}, page=page)
    approvals = checker.get(f"{BASE}/approvals").text
    assert "客户投诉退回积分" in approvals and "\\u5ba2" not in approvals and "<b>&" not in approvals
    assert approve(checker, pending_id(checker)).status_code == 303
    trail = checker.get(f"{BASE}/audit").text
    assert "客户投诉退回积分" in trail and "\\u5ba2" not in trail and "<b>&" not in trail


def test_a_refused_adjustment_marks_the_request_failed_and_changes_nothing(network, client_as, member):
    maker, checker = client_as("operator"), client_as("checker")
    page = f"{BASE}/members/{member}"
    post_form(maker, f"{page}/adjustments", {"points": "-500", "reason": "too much", "request_key": "form-2"},
              page=page)
    pending = pending_id(maker)
    answer = approve(checker, pending)
    assert answer.status_code == 409 and 'data-code="insufficient_points"' in answer.text
    status = network.tx(lambda tx: tx.session.get(PendingAction, int(pending)).status, readonly=True)
    assert status == "failed" and network.balance(member)["available"] == 120
    assert audited(network, "approval.failed", member)[0]["detail"]["code"] == "insufficient_points"
    verify_ok(network)


@pytest.mark.parametrize("points, reason, code", [("abc", "x", "invalid_points"), ("0", "x", "invalid_points"),
                                                  ("5", " ", "validation_failed"),
                                                  ("1000000000001", "x", "invalid_points"),
                                                  ("-1000000000001", "x", "invalid_points")])
def test_a_malformed_adjustment_is_refused_beside_the_form(network, client_as, member, points, reason, code):
    client = client_as("operator")
    page = f"{BASE}/members/{member}"
    answer = post_form(client, f"{page}/adjustments", {"points": points, "reason": reason}, page=page)
    assert answer.status_code == 422 and f'data-code="{code}"' in answer.text
    assert 'data-testid="adjust-form"' in answer.text and audited(network, "approval.requested") == []


def test_finance_cannot_adjust_or_erase(network, client_as, member):
    client = client_as("finance")
    page = f"{BASE}/members/{member}"
    assert 'data-testid="adjust-form"' not in client.get(page).text
    for path, data in (("adjustments", {"points": "5", "reason": "x"}), ("erasure", {})):
        assert post_form(client, f"{page}/{path}", data, page=page).status_code == 403
    assert audited(network, "approval.requested") == []


def test_erasure_is_refused_while_holds_are_open_and_runs_after_approval(network, client_as, partners, member):
    maker, checker = client_as("operator"), client_as("checker")
    page = f"{BASE}/members/{member}"
    hold = network.hold(partners["CoffeeCo"], member, "h1", 50)
    refused = post_form(maker, f"{page}/erasure", {"reason": "ticket-7"}, page=page)
    assert refused.status_code == 409 and 'data-code="holds_open"' in refused.text
    assert audited(network, "approval.requested") == []
    network.void(partners["CoffeeCo"], hold["hold_id"])
    assert post_form(maker, f"{page}/erasure", {"reason": "ticket-7"}, page=page).status_code == 303
    approve(checker, pending_id(maker))
    row = network.tx(lambda tx: tx.session.get(Member, member), readonly=True)
    assert row.status == "erased" and row.phone_ct is None and row.email_bidx is None
    erased = maker.get(page).text
    assert 'data-testid="erased"' in erased and 'data-testid="adjust-form"' not in erased
    assert search(maker, PHONE).status_code == 404
    verify_ok(network)


def test_a_hold_that_timed_out_does_not_stop_an_erasure(network, client_as, partners, member, clock):
    """The pre-check counts as the erasure does: a timed-out hold is no longer open (docs/ledger.md, 7);
    the approved erasure releases it (a ``hold_expiry`` entry), forfeits everything and verifies."""
    maker, checker = client_as("operator"), client_as("checker")
    page = f"{BASE}/members/{member}"
    network.hold(partners["CoffeeCo"], member, "h1", 50)
    clock.advance(minutes=network.settings.hold_timeout_minutes + 1)
    assert post_form(maker, f"{page}/erasure", {"reason": "ticket-9"}, page=page).status_code == 303
    answer = approve(checker, pending_id(maker))
    assert answer.status_code in (200, 303) and "data-code=" not in answer.text
    row = network.tx(lambda tx: tx.session.get(Member, member), readonly=True)
    assert row.status == "erased" and row.available == 0 and row.held == 0
    kinds = network.tx(lambda tx: tx.session.scalars(select(Entry.kind).where(Entry.member_id == member)).all(),
                       readonly=True)
    assert sorted(kinds) == ["earn", "expiry", "hold", "hold_expiry"]
    verify_ok(network)


def test_an_erasure_of_an_erased_member_is_refused_when_asked_not_queued(network, client_as, member):
    from shared.members.erasure import erase_member

    maker = client_as("operator")
    page = f"{BASE}/members/{member}"
    network.tx(lambda tx: erase_member(tx, member, keyring=network.keyring, reason="ticket-1"))
    refused = post_form(maker, f"{page}/erasure", {"reason": "ticket-2"}, page=page)
    assert refused.status_code == 409 and 'data-code="member_erased"' in refused.text
    assert audited(network, "approval.requested") == []


def test_an_erasure_refused_at_approval_is_marked_failed(network, client_as, partners, member):
    maker, checker = client_as("operator"), client_as("checker")
    page = f"{BASE}/members/{member}"
    post_form(maker, f"{page}/erasure", {"reason": "ticket-8"}, page=page)
    network.hold(partners["CoffeeCo"], member, "h2", 10)  # a hold opens while the request waits
    pending = pending_id(maker)
    answer = approve(checker, pending)
    assert 'data-code="holds_open"' in answer.text
    assert network.tx(lambda tx: tx.session.get(PendingAction, int(pending)).status, readonly=True) == "failed"
    assert network.tx(lambda tx: tx.session.get(Member, member).status, readonly=True) == "active"


def test_a_partner_viewer_reaches_no_member(client_as, member):
    viewer = client_as("viewer")
    for path in ("/members", f"/members/{member}", f"/members/{member}/lots"):
        assert viewer.get(BASE + path).status_code == 403
    assert post_form(viewer, f"{BASE}/members", {"q": PHONE}).status_code == 403
