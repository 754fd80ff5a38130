"""An enrolment of a contact already enrolled and linked to the partner, and the member's erasure, at
the same time (PostgreSQL; SQLite's one writer runs them one after the other).

The enrolment holds the member's row FOR SHARE from the moment it finds it, so the erasure (which takes
it FOR UPDATE) either comes after the enrolment committed — and then blanks its Idempotency-Key record
with the others — or before it looked — and then the enrolment no longer finds an active member and
enrols the contact as a person it does not know, as a retry after the erasure would."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import select

from shared.models import IdempotencyRecord
from tests.interleave import Pause, overlap
from tests.partner_api.conftest import api, partners, serve, shop  # noqa: F401  (fixtures)

pytestmark = pytest.mark.postgres

BODY = {"phone": "+8613912345678", "email": "li.lei@example.com", "name": "Li Lei", "customer_ref": "C-77"}


def _hashes(network) -> set[str]:
    return {network.keyring.blind_index(f"request.{field}", value) for field, value in BODY.items()}


def _records_naming(network, member_id: str) -> list[IdempotencyRecord]:
    records = network.tx(lambda tx: tx.session.execute(select(IdempotencyRecord)).scalars().all(), readonly=True)
    return [r for r in records if r.request.endswith('"path":"/v1/members"}')
            and json.loads(r.response).get("member_id") == member_id]


def _erase_while_the_enrolment_reads_the_balance(network, partner, body, idempotency_key, member, monkeypatch):
    """Send ``body`` to ``POST /v1/members``, pause the enrolment right after it read the balance (in the
    server's thread) and erase ``member`` meanwhile; returns (the answer, the erasure's outcome, whether
    the erasure was still waiting a second after it began)."""
    from services.partner_api import routes

    reached, released = threading.Event(), threading.Event()
    original = routes.member_balance

    def paused(*args, **kwargs):
        result = original(*args, **kwargs)
        if not reached.is_set():  # the enrolment's own unit
            reached.set()
            released.wait(10)
        return result

    monkeypatch.setattr(routes, "member_balance", paused)
    outcomes: dict[str, object] = {}

    def run(name, unit):
        try:
            outcomes[name] = unit()
        except Exception as exc:  # asserted by the caller
            outcomes[name] = exc

    enrolling = threading.Thread(target=run, args=("enrolment", lambda: partner.call(
        "POST", "/v1/members", body, idempotency_key=idempotency_key)), daemon=True)
    enrolling.start()
    assert reached.wait(10), "the enrolment never read the balance"
    erasing = threading.Thread(target=run, args=("erasure", lambda: network.erase_member(member)), daemon=True)
    erasing.start()
    erasing.join(1.0)
    waited = erasing.is_alive()
    released.set()
    enrolling.join(10)
    erasing.join(10)
    assert not enrolling.is_alive() and not erasing.is_alive(), "a unit did not end"
    return outcomes["enrolment"], outcomes["erasure"], waited


def test_an_erasure_while_an_enrolment_reads_the_balance_waits_and_blanks_its_record(network, shop, monkeypatch):
    """The reviewer's interleaving: the enrolment has found the member and read its balance, the
    erasure runs before the enrolment commits. The erasure waits for the enrolment's lock; once the
    enrolment has committed (answering with the member, as it was then), the erasure blanks its record
    too: no keyed hash of the contact stays next to the erased id."""
    from tests.partner_api.conftest import assert_problem

    member = shop.ok("POST", "/v1/members", BODY, idempotency_key="enrol-1", status=201)["member_id"]
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e-1", "points": 10})
    answer, erased, erasure_waited = _erase_while_the_enrolment_reads_the_balance(
        network, shop, BODY, "enrol-2", member, monkeypatch)

    assert isinstance(erased, dict), erased
    assert answer.status_code == 200, answer.text
    assert answer.json()["member_id"] == member and answer.json()["linked"] is True
    hashes = _hashes(network)
    kept = _records_naming(network, member)
    assert len(kept) == 2
    assert not [r.key for r in kept if any(h in r.request for h in hashes)], "keyed hashes stayed beside the erased id"
    assert erasure_waited, "the erasure committed while the enrolment still held the member it answers with"
    # a retry with the enrolment's key is refused, as for any enrolment of the erased member
    assert_problem(shop.call("POST", "/v1/members", BODY, idempotency_key="enrol-2"), 422, "idempotency_key_reused")


def test_an_erasure_while_a_link_token_enrolment_reads_the_balance_blanks_its_record(network, shop, partners,
                                                                                     monkeypatch):
    """The same with a link token presented by a partner the member is linked to already (no new link
    is written, so nothing else would make the erasure wait): the token's and customer_ref's keyed
    hashes go with the erasure too."""
    member = shop.ok("POST", "/v1/members", BODY, status=201)["member_id"]
    other = partners("Other")
    first = shop.ok("POST", f"/v1/members/{member}/link-tokens")["link_token"]
    other.ok("POST", "/v1/members", {"link_token": first, "customer_ref": "X-1"})
    token = shop.ok("POST", f"/v1/members/{member}/link-tokens")["link_token"]
    body = {"link_token": token, "customer_ref": "X-1"}
    answer, erased, erasure_waited = _erase_while_the_enrolment_reads_the_balance(
        network, other, body, "link-2", member, monkeypatch)

    assert isinstance(erased, dict), erased
    assert answer.status_code == 200, answer.text
    assert answer.json()["member_id"] == member
    hashes = {network.keyring.blind_index(f"request.{field}", value) for field, value in body.items()}
    kept = _records_naming(network, member)
    assert not [r.key for r in kept if any(h in r.request for h in hashes)], "keyed hashes stayed beside the erased id"
    assert erasure_waited


def test_an_enrolment_while_the_member_is_being_erased_enrols_the_contact_afresh(network, shop, monkeypatch):
    """The other order: the erasure holds the member when the enrolment finds it (its contact not yet
    blanked). The enrolment waits for the erasure, then finds no active member under that contact and
    enrols a new one (201), as the same request after the erasure would; nothing names the erased id."""
    from shared.members import erasure

    member = shop.ok("POST", "/v1/members", BODY, idempotency_key="enrol-1", status=201)["member_id"]
    pause = Pause().after(monkeypatch, erasure, "lock_members")
    both = overlap(lambda: network.erase_member(member),
                   lambda: shop.call("POST", "/v1/members", BODY, idempotency_key="enrol-2"), pause)
    assert isinstance(both.first, dict), both.first
    assert both.second_waited, "the enrolment did not wait for the erasure holding the member"
    answer = both.second
    assert answer.status_code == 201, answer.text
    assert answer.json()["created"] is True and answer.json()["member_id"] != member
    hashes = _hashes(network)
    assert not [r.key for r in _records_naming(network, member) if any(h in r.request for h in hashes)]
    # the same as a retry after the erasure: the new member is the one the contact finds now
    again = shop.ok("POST", "/v1/members", BODY, idempotency_key="enrol-3", status=200)
    assert again["member_id"] == answer.json()["member_id"]


def test_a_link_token_presented_while_its_member_is_being_erased_is_refused(network, shop, partners, monkeypatch):
    """The erasure holds the member when another partner presents the member's unused link token: the
    enrolment waits for the erasure (which deletes the member's unused tokens), then the token is no
    more (409 ``invalid_link_token``): the erased member is linked to nobody new and no record names it."""
    from shared.members import erasure
    from shared.models import MemberLink
    from tests.partner_api.conftest import assert_problem

    member = shop.ok("POST", "/v1/members", BODY, status=201)["member_id"]
    token = shop.ok("POST", f"/v1/members/{member}/link-tokens")["link_token"]
    other = partners("Other")
    pause = Pause().after(monkeypatch, erasure, "lock_members")
    both = overlap(lambda: network.erase_member(member),
                   lambda: other.call("POST", "/v1/members", {"link_token": token, "customer_ref": "X-1"}), pause)
    assert isinstance(both.first, dict), both.first
    assert both.second_waited, "the enrolment did not wait for the erasure holding the token's member"
    assert_problem(both.second, 409, "invalid_link_token")
    links = network.tx(lambda tx: tx.session.execute(select(MemberLink.partner_id).where(
        MemberLink.member_id == member)).scalars().all(), readonly=True)
    assert links == [shop.partner_id]
