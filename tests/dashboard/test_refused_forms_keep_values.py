"""A form that comes back refused keeps everything typed into it (docs/dashboard.md): the member page's
adjustment and erasure forms, a partner's key form and webhook forms, and the sign-in form's e-mail
address — never its password. And a table's "Previous" from past its end leads to its last page."""

from __future__ import annotations

import re
from html import unescape

import pytest

from services.dashboard.paging import Page
from shared.access import audit
from tests.dashboard.conftest import BASE, make_client, post_form, sign_in
from tests.dashboard.test_partners import pem
from tests.dashboard.test_request_duplicates import form_key, requests


@pytest.fixture
def member(network, partners) -> str:
    member_id = network.enrol(partners["CoffeeCo"], phone="+8613912345678")["member_id"]
    network.earn(partners["CoffeeCo"], member_id, "e1", points=120)
    return member_id


def field(html: str, name: str, form: str | None = None) -> str | None:
    """The value an input of the page (of one form, by its data-testid) comes back with."""
    if form is not None:
        html = html.split(f'data-testid="{form}"', 1)[1].split("</form>", 1)[0]
    found = re.search(rf'<input[^>]* name="{name}"[^>]*>', html)
    value = re.search(r' value="([^"]*)"', found.group(0)) if found else None
    return unescape(value.group(1)) if value else None


# -- the member page -----------------------------------------------------------------------------------

def test_a_refused_adjustment_keeps_its_points_and_reason_with_a_fresh_key(network, client_as, member):
    op = client_as("operator")
    page = f"{BASE}/members/{member}"
    key = form_key(op, member)
    refused = post_form(op, f"{page}/adjustments",
                        {"points": "+5", "reason": "goodwill for late delivery", "request_key": key}, page=page)
    assert refused.status_code == 422 and 'data-code="invalid_points"' in refused.text
    assert field(refused.text, "points", "adjust-form") == "+5"
    assert field(refused.text, "reason", "adjust-form") == "goodwill for late delivery"
    assert field(refused.text, "request_key", "adjust-form") not in (None, "", key)  # nothing was filed
    assert field(refused.text, "reason", "erase-form") == ""  # the other form is not filled in

    long = "x" * 1001
    refused = post_form(op, f"{page}/adjustments", {"points": "-5", "reason": long, "request_key": key}, page=page)
    assert refused.status_code == 422 and 'data-code="validation_failed"' in refused.text
    assert field(refused.text, "points", "adjust-form") == "-5" and field(refused.text, "reason", "adjust-form") == long
    assert requests(network) == []


def test_an_adjustment_sent_again_while_it_waits_comes_back_as_the_same_one(network, client_as, member):
    """Refused as a duplicate, the form keeps what was typed and its own key: sent once more, it is
    refused again rather than filed as a second adjustment."""
    op = client_as("operator")
    page = f"{BASE}/members/{member}"
    form = {"points": "25", "reason": "goodwill", "request_key": form_key(op, member)}
    assert post_form(op, f"{page}/adjustments", form, page=page).status_code == 303
    again = post_form(op, f"{page}/adjustments", form, page=page)
    assert again.status_code == 409 and 'data-code="approval_already_pending"' in again.text
    back = {name: field(again.text, name, "adjust-form") for name in ("points", "reason", "request_key")}
    assert back == form
    third = post_form(op, f"{page}/adjustments", back, page=page)
    assert third.status_code == 409 and 'data-code="approval_already_pending"' in third.text
    assert len(requests(network)) == 1


def test_a_refused_erasure_keeps_its_reference(network, client_as, partners, member):
    op = client_as("operator")
    page = f"{BASE}/members/{member}"
    network.hold(partners["CoffeeCo"], member, "h1", 50)
    refused = post_form(op, f"{page}/erasure", {"reason": "ticket-7 (DPO request)"}, page=page)
    assert refused.status_code == 409 and 'data-code="holds_open"' in refused.text
    assert field(refused.text, "reason", "erase-form") == "ticket-7 (DPO request)"
    assert field(refused.text, "points", "adjust-form") == "" and field(refused.text, "reason", "adjust-form") == ""


# -- a partner's keys and webhook ------------------------------------------------------------------------

def test_a_refused_key_keeps_the_pem_typed(client_as, partners):
    op = client_as("operator")
    keys = f"{BASE}/partners/{partners['CoffeeCo']}/keys"
    registered = pem()
    assert post_form(op, keys, {"public_key": registered}, page=keys).status_code == 303
    twice = post_form(op, keys, {"public_key": registered}, page=keys)
    assert twice.status_code == 409 and 'data-code="key_already_registered"' in twice.text
    typed = re.search(r'<textarea name="public_key"[^>]*>([^<]*)</textarea>', twice.text).group(1)
    assert unescape(typed) == registered
    # a fresh page has an empty box
    assert re.search(r'<textarea name="public_key"[^>]*></textarea>', op.get(keys).text)


def test_a_refused_overlap_comes_back_on_the_webhook_page_as_typed(network, client_as, partners):
    op = client_as("operator")
    hooks = f"{BASE}/partners/{partners['CoffeeCo']}/webhooks"
    assert post_form(op, hooks, {"url": "http://127.0.0.1:9/hook"}, page=hooks).status_code == 200
    for typed in ("１２", "721"):
        refused = post_form(op, f"{hooks}/rotate-secret", {"overlap_hours": typed}, page=hooks)
        assert refused.status_code == 422 and 'data-code="validation_failed"' in refused.text, typed
        assert 'data-testid="webhook-form"' in refused.text and 'data-testid="deliveries"' in refused.text
        assert field(refused.text, "overlap_hours") == typed
        assert "whsec_" not in refused.text
    assert post_form(op, f"{hooks}/rotate-secret", {"overlap_hours": "2"}, page=hooks).status_code == 200
    running = post_form(op, f"{hooks}/rotate-secret", {"overlap_hours": "3"}, page=hooks)
    assert running.status_code == 409 and 'data-code="rotation_overlap_running"' in running.text
    assert field(running.text, "overlap_hours") == "3"
    assert field(op.get(hooks).text, "overlap_hours") == "24"


def test_a_refused_webhook_url_keeps_the_url_typed(client_as, partners):
    op = client_as("operator")
    hooks = f"{BASE}/partners/{partners['CoffeeCo']}/webhooks"
    assert post_form(op, hooks, {"url": "http://127.0.0.1:9/hook"}, page=hooks).status_code == 200
    refused = post_form(op, hooks, {"url": "http://example.org/hook?a=1&b=2"}, page=hooks)
    assert refused.status_code == 422 and 'data-code="invalid_webhook_url"' in refused.text
    assert field(refused.text, "url", "webhook-form") == "http://example.org/hook?a=1&b=2"
    assert field(op.get(hooks).text, "url", "webhook-form") == "http://127.0.0.1:9/hook"  # what is stored


# -- sign-in: the e-mail address comes back, the password never ------------------------------------------

def test_a_refused_sign_in_keeps_the_email_and_never_the_password(network, staff):
    client = make_client(network)
    secret = "wrong password, 0xC0FFEE!"
    answer = sign_in(client, staff["operator"], secret)
    assert answer.status_code == 401 and field(answer.text, "email") == staff["operator"]
    assert field(answer.text, "password") is None and secret not in answer.text


# -- "Previous" from past the end of a table ---------------------------------------------------------------

def test_previous_past_the_end_leads_to_the_last_page():
    def previous(offset: int, total: int, limit: int = 50):
        return Page([], total, offset, limit, {"action": "x"}).previous_link

    assert previous(500, 3) == "?action=x&offset=0&limit=50"
    assert previous(500, 120) == "?action=x&offset=100&limit=50"
    assert previous(100, 100) == "?action=x&offset=50&limit=50"
    assert previous(120, 120, 40) == "?action=x&offset=80&limit=40"
    assert previous(0, 3) is None
    assert previous(500, 0) == "?action=x&offset=0&limit=50"  # an empty table: its one (empty) page
    assert Page([1], 300, 150, 50, {}).previous_link == "?offset=100&limit=50"  # within the table: one back


def test_previous_on_a_stale_audit_link_goes_to_the_last_page(network, client_as):
    op = client_as("operator")
    total = network.tx(lambda tx: audit.page(tx), readonly=True)[1]
    assert 0 < total <= 50
    html = op.get(f"{BASE}/audit?offset=500&limit=50").text
    assert 'href="?offset=0&amp;limit=50" rel="prev"' in html
    assert 'offset=450' not in html
