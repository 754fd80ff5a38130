"""What the dashboard refuses before any page runs: a NUL character (U+0000) in a request's address,
query or form. PostgreSQL cannot store or compare one in text (a 500 on any page that looks it up),
so it is refused at the door with the page every invalid input gets: 422 ``validation_failed``.
Run on PostgreSQL too (POINTSNET_TEST_DATABASE_URL), where it used to be a 500."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from shared.models import AuditEntry, LoginFailure, Partner, PendingAction
from tests.dashboard.conftest import BASE, csrf_of, make_client, post_form


def count(network, model) -> int:
    return network.tx(lambda tx: tx.session.scalar(select(func.count()).select_from(model)), readonly=True)


def refused_for_nul(answer) -> bool:
    return (answer.status_code == 422 and 'data-code="validation_failed"' in answer.text
            and "NUL character" in answer.text and answer.headers["x-frame-options"] == "DENY")


def test_a_nul_in_the_sign_in_form_is_refused_before_anyone_is_looked_up(network, staff):
    client = make_client(network)
    client._transport.raise_server_exceptions = False
    form = client.get(f"{BASE}/login")
    answer = client.post(f"{BASE}/login", data={"email": "op\x00@example.org", "password": "x" * 12,
                                                "csrf_token": csrf_of(form.text)},
                         headers={"origin": "http://testserver"})
    assert refused_for_nul(answer), answer.status_code
    assert count(network, LoginFailure) == 0 and "pointsnet_session" not in client.cookies


@pytest.mark.parametrize("path", ["/audit?action=session%00", "/members?q=mem_%00&by=id", "/ledger?reference=a%00",
                                  "/partners?name=a%00", "/partners/ptn_%00", "/members/mem_%00"])
def test_a_nul_in_a_filter_a_search_or_an_address_is_refused(client_as, path):
    client = client_as("operator")
    client._transport.raise_server_exceptions = False
    assert refused_for_nul(client.get(BASE + path))


def test_a_nul_in_a_form_field_is_refused_and_nothing_is_queued_or_created(network, client_as, partners):
    """An erasure's reason pasted from a ticket system, a new partner's name: refused when sent (never
    queued, so never a request that every approval breaks on), and nothing is written."""
    member = network.enrol(partners["CoffeeCo"], phone="+8613912345678", customer_ref="c-1")["member_id"]
    client = client_as("operator")
    client._transport.raise_server_exceptions = False
    before = count(network, AuditEntry)
    asked = post_form(client, f"{BASE}/members/{member}/erasure", {"reason": "ticket\x00 42"})
    assert refused_for_nul(asked), asked.status_code
    onboarded = post_form(client, f"{BASE}/partners", {"name": "Tea\x00House", "billing": "postpaid"},
                          page=f"{BASE}/partners/new")
    assert refused_for_nul(onboarded), onboarded.status_code
    assert count(network, PendingAction) == 0 and count(network, Partner) == 2
    assert count(network, AuditEntry) == before


def test_text_that_only_looks_like_a_nul_is_accepted(network, client_as, partners):
    """A backslash-zero or the letters "%00" typed into a field are text, not a NUL character."""
    client = client_as("operator")
    assert client.get(f"{BASE}/audit", params={"action": "\\0 %00"}).status_code == 200
    onboarded = post_form(client, f"{BASE}/partners", {"name": "Tea %00 \\0 House", "billing": "postpaid"},
                          page=f"{BASE}/partners/new")
    assert onboarded.status_code == 303, onboarded.text
    assert count(network, Partner) == 3


def test_an_uploaded_log_is_refused_only_for_a_real_nul(network, clock, client_as, partners):
    """In a multipart upload (the partner log on the Reconcile page) the letters %00 are raw text, not
    URL-encoding: a partner's reference may hold them (POST /v1/burn takes ``INV%0017``). Such a log is
    reconciled; one with an actual NUL byte is refused as any form is."""
    from datetime import date

    from tests.factories import make_member

    cycle = date(2026, 11, 20)
    coffee, book = partners["CoffeeCo"], partners["BookMart"]
    member = make_member(network, coffee, also_linked_to=(book,))
    network.earn(coffee, member, "coffee-1", points=500)
    clock.advance(minutes=5)
    burn = network.burn(book, member, "INV%0017", 300)
    clock.advance(days=1)
    network.settle(cycle)
    client = client_as("finance")
    token = csrf_of(client.get(f"{BASE}/settlement/{cycle}/reconcile").text)
    header = "reference,kind,points,amount,time\n"

    def upload(line: str):
        return client.post(f"{BASE}/settlement/{cycle}/reconcile", headers={"origin": "http://testserver"},
                           data={"csrf_token": token, "partner_id": book, "format": "html"},
                           files={"log": ("bookmart.csv", (header + line).encode(), "text/csv")})

    answer = upload(f"INV%0017,burn,300,300.000000,{burn['posted_at']}\n")
    assert answer.status_code == 200 and 'data-breaks="0"' in answer.text, answer.text[-600:]
    assert refused_for_nul(upload(f"INV\x000017,burn,300,300.000000,{burn['posted_at']}\n"))


@pytest.mark.parametrize("body", [b"name=%FF", b"name=\xff", b"name=caf%C3"], ids=["escape", "raw", "cut"])
def test_a_form_that_is_not_utf8_text_is_refused_and_makes_no_partner(network, client_as, body):
    """Starlette read ``%ff`` as U+FFFD and a raw byte as Latin-1 (``ÿ``): onboarding made partners so
    named, which `pointsnet partners add` refuses (not UTF-8 text). A browser never sends such a form."""
    client = client_as("operator")
    client._transport.raise_server_exceptions = False
    before = count(network, Partner)
    token = csrf_of(client.get(f"{BASE}/partners/new").text)
    answer = client.post(f"{BASE}/partners", content=body + b"&csrf_token=" + token.encode(),
                         headers={"origin": "http://testserver",
                                  "content-type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 422 and "not UTF-8 text" in answer.text, (answer.status_code, answer.text[-400:])
    assert count(network, Partner) == before


def test_a_file_sent_for_a_text_field_is_refused_and_makes_no_partner(network, client_as):
    """A multipart form with the partner's name as a file part made a partner named
    ``UploadFile(filename='a', …)``."""
    client = client_as("operator")
    client._transport.raise_server_exceptions = False
    before = count(network, Partner)
    token = csrf_of(client.get(f"{BASE}/partners/new").text)
    answer = client.post(f"{BASE}/partners", data={"csrf_token": token}, files={"name": ("a", b"Shop", "text/plain")},
                         headers={"origin": "http://testserver"})
    assert answer.status_code == 422 and "is a text field, not a file" in answer.text, answer.status_code
    assert count(network, Partner) == before
    # UTF-8 text beyond ASCII, percent-encoded as a browser sends it, is a name like any other
    named = client.post(f"{BASE}/partners", data={"csrf_token": token, "name": "咖啡店 Café"},
                        headers={"origin": "http://testserver"})
    assert named.status_code == 303, named.text[-400:]
    assert count(network, Partner) == before + 1


def test_a_multipart_text_part_that_is_not_utf8_is_refused_and_makes_no_partner(network, client_as):
    """Starlette reads a multipart text part that is not UTF-8 as Latin-1: b"Caf\\xe9 Shop" made a partner
    named "Café Shop" (found by the review of this session's commits). A reconciliation's file part is the
    partner log's own business (its check says "not UTF-8 text" itself)."""
    client = client_as("operator")
    client._transport.raise_server_exceptions = False
    before = count(network, Partner)
    token = csrf_of(client.get(f"{BASE}/partners/new").text)
    body = (b'--xx\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n' + token.encode()
            + b'\r\n--xx\r\nContent-Disposition: form-data; name="name"\r\n\r\nCaf\xe9 Shop\r\n--xx--\r\n')
    answer = client.post(f"{BASE}/partners", content=body,
                         headers={"origin": "http://testserver", "content-type": "multipart/form-data; boundary=xx"})
    assert answer.status_code == 422 and "not UTF-8 text" in answer.text, answer.status_code
    assert count(network, Partner) == before
    utf8 = body.replace(b"Caf\xe9 Shop", "咖啡店 Café".encode())
    made = client.post(f"{BASE}/partners", content=utf8,
                       headers={"origin": "http://testserver", "content-type": "multipart/form-data; boundary=xx"})
    assert made.status_code == 303 and count(network, Partner) == before + 1, made.text[-300:]
