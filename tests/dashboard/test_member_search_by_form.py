"""The member search keeps what was typed out of URLs (docs/security.md, "Nothing personal is
logged"; docs/dashboard.md, "Members"): the form is a POST with the session's CSRF token, a hit
answers 303 to the member's opaque id, a miss re-renders the form with the value in its field only;
a GET searches by member id only and refuses a phone number or e-mail address without searching."""

from __future__ import annotations

import re

import pytest

from shared.members import enrolment
from tests.dashboard.conftest import BASE, csrf_of, post_form
from tests.dashboard.test_members import EMAIL, PHONE, search

DIGITS = PHONE.lstrip("+")


@pytest.fixture
def member(network, partners) -> str:
    return network.enrol(partners["CoffeeCo"], phone=PHONE, email=EMAIL, name="Li Wei")["member_id"]


@pytest.fixture
def no_lookup(monkeypatch) -> list:
    """Records every blind-index lookup the search makes."""
    calls, real = [], enrolment.find_member

    def recorded(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr("services.dashboard.views.members.find_member", recorded)
    return calls


def links_and_actions(html: str) -> str:
    """Every URL the page names: links, form actions, sources."""
    return " ".join(re.findall(r'(?:href|action|src)="([^"]*)"', html))


def test_the_search_form_is_a_post_with_the_csrf_token(client_as):
    html = client_as("operator").get(f"{BASE}/members").text
    form = re.search(r'<form[^>]*data-testid="member-search"[^>]*>.*?</form>', html, re.S).group(0)
    assert 'method="post"' in form and f'action="{BASE}/members"' in form
    assert 'name="csrf_token"' in form and csrf_of(form)


@pytest.mark.parametrize("query, by", [(PHONE, "phone"), ("139 1234 5678", "auto"), (EMAIL, "email"),
                                       ("li.wei@example.org", "auto"), (None, "id"), (None, "auto")])
def test_a_hit_answers_303_to_the_member_id_without_what_was_typed(client_as, member, query, by):
    for who in ("operator", "finance"):
        answer = search(client_as(who), query or member, by)
        assert answer.status_code == 303, answer.text
        location = answer.headers["location"]
        assert location == f"{BASE}/members/{member}" and "?" not in location
        assert DIGITS not in location and "@" not in location and "example" not in location.lower()


@pytest.mark.parametrize("query, by", [("+8613900000000", "auto"), ("nobody@example.org", "email"),
                                       ("mem_nobody", "id")])
def test_a_miss_is_404_with_the_value_in_the_form_field_only(client_as, member, query, by):
    answer = search(client_as("operator"), query, by)
    assert answer.status_code == 404 and 'data-code="unknown_member"' in answer.text
    assert "location" not in answer.headers and answer.url.query == b""
    assert re.search(rf'<input name="q" value="{re.escape(query)}"', answer.text)
    assert answer.text.count(query) == 1  # in the field, nowhere else
    assert query not in links_and_actions(answer.text)
    assert f'value="{by}" selected' in answer.text


def test_a_refused_search_is_422_with_the_value_in_the_form_field(client_as, member):
    answer = search(client_as("operator"), "12", "phone")
    assert answer.status_code == 422 and 'data-code="invalid_contact"' in answer.text
    assert '<input name="q" value="12"' in answer.text


@pytest.mark.parametrize("form", [{"q": "x" * 255}, {"q": PHONE, "by": "name"}])
def test_a_malformed_search_form_is_422(client_as, member, form, no_lookup):
    answer = post_form(client_as("operator"), f"{BASE}/members", form, page=f"{BASE}/members")
    assert answer.status_code == 422 and 'data-code="validation_failed"' in answer.text
    assert no_lookup == []


def test_the_longest_email_the_api_enrols_is_found(network, partners, client_as):
    """The API enrols an address of up to 254 characters; the search refused more than 200, so such a member
    could be found by phone or id only (an erasure asked for by e-mail, say)."""
    email = "l" * 60 + "@" + "a" * 60 + "." + "b" * 60 + "." + "c" * 60 + ".com"
    member = network.enrol(partners["CoffeeCo"], email=email)["member_id"]
    answer = post_form(client_as("operator"), f"{BASE}/members", {"q": email}, page=f"{BASE}/members")
    assert answer.status_code == 303 and answer.headers["location"].endswith(f"/members/{member}"), answer.status_code


@pytest.mark.parametrize("params", [{"q": PHONE}, {"q": "139 1234 5678", "by": "phone"}, {"q": EMAIL},
                                    {"q": "li.wei@example.org", "by": "email"}, {"q": "mem_x", "by": "phone"},
                                    {"q": DIGITS, "by": "id"}])
def test_a_get_with_personal_data_is_refused_and_not_searched(client_as, member, params, no_lookup):
    for who in ("operator", "finance"):
        answer = client_as(who).get(f"{BASE}/members", params=params)
        assert answer.status_code == 400 and 'data-code="search_by_form"' in answer.text
        assert "location" not in answer.headers and f"/members/{member}" not in answer.text
        assert params["q"] not in answer.text and "1234" not in answer.text and "li.wei" not in answer.text.lower()
        assert 'data-testid="member-search"' in answer.text and '<input name="q" value=""' in answer.text
    assert no_lookup == []


def test_a_get_by_member_id_still_works(client_as, member, no_lookup):
    client = client_as("finance")
    for params in ({"q": member}, {"q": member, "by": "id"}, {"q": f"  {member} "}):
        answer = client.get(f"{BASE}/members", params=params)
        assert answer.status_code == 303 and answer.headers["location"] == f"{BASE}/members/{member}"
    missing = client.get(f"{BASE}/members", params={"q": "mem_nobody"})
    assert missing.status_code == 404 and '<input name="q" value="mem_nobody"' in missing.text
    assert client.get(f"{BASE}/members").status_code == 200
    assert no_lookup == []  # by id: the directory, not the blind index


@pytest.mark.parametrize("headers, with_token", [({"origin": "http://testserver"}, False),
                                                 ({"origin": "http://evil.example"}, True), ({}, True)])
def test_a_search_without_the_csrf_token_or_from_elsewhere_is_refused(client_as, member, no_lookup, headers,
                                                                      with_token):
    client = client_as("operator")
    token = csrf_of(client.get(f"{BASE}/members").text)
    data = {"q": PHONE, "by": "phone"} | ({"csrf_token": token} if with_token else {})
    answer = client.post(f"{BASE}/members", data=data, headers=headers)
    assert answer.status_code == 403 and 'data-code="csrf_rejected"' in answer.text
    assert "location" not in answer.headers and DIGITS not in answer.text
    assert no_lookup == []


def test_only_operators_and_finance_search(client_as, member, no_lookup):
    viewer = client_as("viewer")
    assert post_form(viewer, f"{BASE}/members", {"q": PHONE}).status_code == 403
    assert no_lookup == []
