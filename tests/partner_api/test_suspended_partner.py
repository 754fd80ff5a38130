"""A suspended partner still settles, so it still reads: its signed GETs answer (statements, reports,
its transactions, its members), every write is refused with 403 ``partner_suspended`` and changes
nothing. A terminated partner still settles, so it reads its statements; it is refused everything
else with ``partner_terminated``."""

from __future__ import annotations

import hashlib

import pytest

from shared.ledger.cycles import cycle_date_for
from shared.partners.lifecycle import set_status, terminate
from shared.settlement.runs import settlement_dir
from tests.partner_api.conftest import Partner, assert_problem, enrol, entry_count


def settled_day(network, clock, shop, other):
    """One cycle: the shop issues 500 points, the other partner redeems 200 of them; settled."""
    member = enrol(shop)
    token = shop.ok("POST", f"/v1/members/{member}/link-tokens", {})["link_token"]
    other.ok("POST", "/v1/members", {"link_token": token})
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e-1", "points": 500})
    other.ok("POST", "/v1/burn", {"member_id": member, "reference": "b-1", "points": 200})
    cycle = cycle_date_for(clock.now(), network.settings)
    clock.advance(days=1)
    network.settle(cycle)
    return member, cycle


def test_a_suspended_partner_reads_what_it_still_settles(network, clock, shop, api):
    member, cycle = settled_day(network, clock, shop, Partner(network, api))
    network.tx(lambda tx: set_status(tx, shop.partner_id, "suspended"))

    [listed] = shop.ok("GET", "/v1/statements")["statements"]
    assert (listed["cycle_date"], listed["net_minor"]) == (cycle.isoformat(), -200)
    one = shop.ok("GET", f"/v1/statements/{cycle}")
    file = (settlement_dir(network.settings.data_dir, cycle) / f"statement-{shop.partner_id}.csv").read_bytes()
    assert one["statement_csv"].encode() == file and one["statement_sha256"] == hashlib.sha256(file).hexdigest()
    csv_answer = shop.call("GET", f"/v1/statements/{cycle}/statement.csv")
    assert csv_answer.status_code == 200 and csv_answer.content == file
    assert [t["reference"] for t in shop.ok("GET", "/v1/transactions")["transactions"]] == ["e-1"]
    assert shop.ok("GET", f"/v1/members/{member}")["balance"]["available"] == 300
    assert len(shop.ok("GET", f"/v1/members/{member}/history")["movements"]) == 2
    report = shop.call("GET", "/v1/reports", params={"from": cycle.isoformat(), "to": cycle.isoformat()})
    assert report.status_code == 200, report.text


def test_a_suspended_partners_writes_are_refused_and_change_nothing(network, clock, shop, api):
    member, _cycle = settled_day(network, clock, shop, Partner(network, api))
    network.tx(lambda tx: set_status(tx, shop.partner_id, "suspended"))
    entries = entry_count(network)
    for path, body in (("/v1/earn", {"member_id": member, "reference": "e-2", "points": 5}),
                       ("/v1/earn/quote", {"member_id": member, "reference": "e-2", "points": 5}),
                       ("/v1/burn", {"member_id": member, "reference": "b-2", "points": 5}),
                       ("/v1/holds", {"member_id": member, "reference": "h-2", "points": 5}),
                       ("/v1/reversals", {"reference": "r-2", "original_reference": "e-1", "points": 5}),
                       ("/v1/batch", {"events": [{"type": "earn", "member_id": member, "reference": "e-3",
                                                  "points": 5}]}),
                       ("/v1/members", {"phone": "+8613900007777"}),
                       (f"/v1/members/{member}/link-tokens", {})):
        assert_problem(shop.call("POST", path, body), 403, "partner_suspended")
    assert entry_count(network) == entries
    # reactivated, the same write goes through
    network.tx(lambda tx: set_status(tx, shop.partner_id, "active"))
    assert shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e-2", "points": 5})["points"] == 5


@pytest.mark.parametrize("settlement", ["keep_paying", "buy_out"])
def test_a_terminated_partner_reads_its_statements_and_nothing_else(network, clock, shop, api, settlement):
    """A terminated partner still settles — under keep_paying it keeps reimbursing its points redeemed
    elsewhere, after a buy-out it pays once in its final cycle — so its signed GETs of its statements
    (the list, one cycle, the CSV file) answer. Every other request, any write and its other reads,
    stays refused with 403 ``partner_terminated`` and changes nothing."""
    other = Partner(network, api)
    member, cycle = settled_day(network, clock, shop, other)
    rate = 1_000_000 if settlement == "buy_out" else None
    network.tx(lambda tx: terminate(tx, shop.partner_id, settlement=settlement, buy_out_rate_ppm=rate))
    other.ok("POST", "/v1/burn", {"member_id": member, "reference": "b-2", "points": 100})
    later = cycle_date_for(clock.now(), network.settings)
    clock.advance(days=1)
    network.settle(later)

    listed = shop.ok("GET", "/v1/statements")["statements"]
    assert [row["cycle_date"] for row in listed] == [later.isoformat(), cycle.isoformat()]
    # keep_paying: the 100 points redeemed after the termination; buy_out: the 300 open points, once
    assert listed[0]["net_minor"] == -(100 if settlement == "keep_paying" else 300)
    for day in (cycle, later):
        file = (settlement_dir(network.settings.data_dir, day) / f"statement-{shop.partner_id}.csv").read_bytes()
        one = shop.ok("GET", f"/v1/statements/{day}")
        assert one["statement_csv"].encode() == file and one["statement_sha256"] == hashlib.sha256(file).hexdigest()
        csv_answer = shop.call("GET", f"/v1/statements/{day}/statement.csv")
        assert csv_answer.status_code == 200 and csv_answer.content == file
    assert_problem(shop.call("GET", "/v1/transactions"), 403, "partner_terminated")
    assert_problem(shop.call("GET", f"/v1/members/{member}"), 403, "partner_terminated")
    assert_problem(shop.call("GET", "/v1/reports", params={"from": cycle.isoformat(), "to": cycle.isoformat()}),
                   403, "partner_terminated")
    entries = entry_count(network)
    for path, body in (("/v1/earn", {"member_id": member, "reference": "e-2", "points": 5}),
                       ("/v1/burn", {"member_id": member, "reference": "b-3", "points": 5}),
                       ("/v1/reversals", {"reference": "r-2", "original_reference": "e-1", "points": 5}),
                       ("/v1/members", {"phone": "+8613900007777"})):
        assert_problem(shop.call("POST", path, body), 403, "partner_terminated")
    assert entry_count(network) == entries


# -- suspended or terminated between the door and the posting: the 403 is not kept for the key --------

def _stored_for(network, partner_id: str, key: str):
    from shared.ledger import idempotency

    return network.tx(lambda tx: tx.session.execute(idempotency.LOOKUP, {"partner_id": partner_id, "key": key})
                      .first(), readonly=True)


def _between_door_and_posting(monkeypatch, network, shop, change):
    """Run ``change`` (a suspension, a termination) once the door has let the request in (the partner
    active there, in its own transaction) and before the posting's transaction begins."""
    import services.partner_api.routes as routes

    real = routes._partner

    def partner(request):
        network.tx(change)
        monkeypatch.setattr(routes, "_partner", real)  # once
        return real(request)

    monkeypatch.setattr(routes, "_partner", partner)


def test_a_suspension_met_by_the_posting_is_not_kept_for_the_idempotency_key(network, shop, monkeypatch):
    """docs/partner-integration.md section 3: only successes, 409 business refusals and 422
    velocity_limit_exceeded are stored. A 403 the posting meets (suspended after the door let the
    request in) was stored, PartnerSuspended being a Conflict, and replayed for the whole retention
    after the partner was reactivated."""
    member = enrol(shop)
    body = {"member_id": member, "reference": "e-race", "points": 5}
    _between_door_and_posting(monkeypatch, network, shop,
                              lambda tx: set_status(tx, shop.partner_id, "suspended"))
    assert_problem(shop.call("POST", "/v1/earn", body, idempotency_key="SUSP-1"), 403, "partner_suspended")
    assert _stored_for(network, shop.partner_id, "SUSP-1") is None
    network.tx(lambda tx: set_status(tx, shop.partner_id, "active"))
    retry = shop.call("POST", "/v1/earn", body, idempotency_key="SUSP-1")
    assert retry.status_code == 200, retry.text
    assert "idempotent-replayed" not in retry.headers and retry.json()["points"] == 5


def test_a_termination_met_by_the_posting_is_not_kept_for_the_idempotency_key(network, shop, monkeypatch):
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e-1", "points": 50})
    _between_door_and_posting(monkeypatch, network, shop, lambda tx: terminate(tx, shop.partner_id))
    answer = shop.call("POST", "/v1/burn", {"member_id": member, "reference": "b-race", "points": 5},
                       idempotency_key="TERM-1")
    assert_problem(answer, 403, "partner_terminated")
    assert _stored_for(network, shop.partner_id, "TERM-1") is None


def test_what_is_kept_for_an_idempotency_key():
    """Successes aside, exactly what the guide's section 3 names: the 409 business refusals and 422
    velocity_limit_exceeded; never a 403, nor request_in_progress."""
    from services.partner_api.exactly_once import storable
    from shared.errors import (HoldNotOpen, InsufficientPoints, MemberErased, PartnerSuspended, PointsAlreadySpent,
                               ReferenceConflict, RequestInProgress, UnknownMember, ValidationFailed,
                               VelocityLimitExceeded)
    from shared.partners.lifecycle import PartnerTerminated
    from shared.partners.limits import FloatExhausted

    for kept in (InsufficientPoints, PointsAlreadySpent, ReferenceConflict, HoldNotOpen, MemberErased,
                 FloatExhausted, VelocityLimitExceeded):
        assert storable(kept("x")), kept
    for not_kept in (PartnerSuspended, PartnerTerminated, RequestInProgress, UnknownMember, ValidationFailed):
        assert not storable(not_kept("x")), not_kept


def test_a_batch_that_meets_a_suspension_answers_403_writes_nothing_and_keeps_nothing(network, shop, monkeypatch):
    """A batch whose posting meets the suspension (after the door let it in) is refused whole, as every
    POST of a suspended partner is: it was a stored 200 of per-event 403s, replayed after reactivation."""
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e-0", "points": 50})
    body = {"events": [{"type": "earn", "reference": "be-1", "member_id": member, "points": 5},
                       {"type": "reversal", "reference": "br-1", "original_reference": "e-0", "points": 10},
                       {"type": "burn", "reference": "bb-1", "member_id": member, "points": 3}]}
    before = entry_count(network, shop.partner_id)
    _between_door_and_posting(monkeypatch, network, shop,
                              lambda tx: set_status(tx, shop.partner_id, "suspended"))
    assert_problem(shop.call("POST", "/v1/batch", body, idempotency_key="BATCH-SUSP"), 403, "partner_suspended")
    assert _stored_for(network, shop.partner_id, "BATCH-SUSP") is None
    assert entry_count(network, shop.partner_id) == before
    network.tx(lambda tx: set_status(tx, shop.partner_id, "active"))
    retry = shop.call("POST", "/v1/batch", body, idempotency_key="BATCH-SUSP")
    assert retry.status_code == 200 and "idempotent-replayed" not in retry.headers, retry.text
    assert retry.json()["accepted"] == 3, retry.text


# -- reversals, captures and voids the posting meets after a suspension or termination (review) --------

def suspend(partner_id):
    return lambda tx: set_status(tx, partner_id, "suspended")


def end(partner_id):
    return lambda tx: terminate(tx, partner_id)


@pytest.mark.parametrize("change,code", [(suspend, "partner_suspended"), (end, "partner_terminated")])
def test_a_reversal_met_after_a_suspension_or_termination_is_refused(network, shop, monkeypatch, change, code):
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e-1", "points": 50})
    before = entry_count(network)
    _between_door_and_posting(monkeypatch, network, shop, change(shop.partner_id))
    answer = shop.call("POST", "/v1/reversals", {"reference": "r-1", "original_reference": "e-1", "points": 20})
    assert_problem(answer, 403, code)
    assert entry_count(network) == before


@pytest.mark.parametrize("change,code", [(suspend, "partner_suspended"), (end, "partner_terminated")])
def test_a_capture_met_after_a_suspension_or_termination_is_refused(network, shop, monkeypatch, change, code):
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e-1", "points": 50})
    hold = shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h-1", "points": 30})["hold_id"]
    before = entry_count(network)
    _between_door_and_posting(monkeypatch, network, shop, change(shop.partner_id))
    answer = shop.call("POST", f"/v1/holds/{hold}/capture", {"points": 30})
    assert_problem(answer, 403, code)
    assert entry_count(network) == before


@pytest.mark.parametrize("change,code", [(suspend, "partner_suspended"), (end, "partner_terminated")])
def test_a_void_met_after_a_suspension_or_termination_is_refused(network, shop, monkeypatch, change, code):
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "e-1", "points": 50})
    hold = shop.ok("POST", "/v1/holds", {"member_id": member, "reference": "h-1", "points": 30})["hold_id"]
    before = entry_count(network)
    _between_door_and_posting(monkeypatch, network, shop, change(shop.partner_id))
    assert_problem(shop.call("POST", f"/v1/holds/{hold}/void", {}), 403, code)
    assert entry_count(network) == before
