"""Dates typed into the dashboard are read strictly: a day is exactly YYYY-MM-DD, an instant RFC 3339
with its offset. Anything else is refused with a 4xx and the reason on the page; a form that is shown
again keeps everything that was typed into it, and nothing is written or queued."""

from __future__ import annotations

import re
from datetime import date
from html import escape

import pytest
from sqlalchemy import func, select

from shared.access import audit
from shared.models import EarnRuleSet
from tests.dashboard.conftest import BASE, post_form
from tests.factories import make_member

CYCLE = date(2026, 11, 20)
LENIENT_DAYS = ["20261201", "2026-W49-2", "2026-12-1", "2026-12-01T00:00:00", "2026-335", "1764547200"]
LENIENT_INSTANTS = ["20261201T000000Z", "2026-W49-2T00:00:00Z", "2026-12-01T00:00Z", "2026-12-01T00:00:00+0800",
                    "2026-12-01 00:00:00Z", "2026-12-01", "2026-12-01T00:00:00", "2026-02-30T00:00:00Z"]
RULES = "base_rate: 2\n"


def _requested(network) -> list[dict]:
    rows, _ = network.tx(lambda tx: audit.page(tx, action="approval.requested"), readonly=True)
    return rows


@pytest.mark.parametrize("typed", LENIENT_DAYS)
def test_a_contract_version_needs_its_date_as_yyyy_mm_dd(network, client_as, partners, typed):
    client = client_as("operator")
    contracts = f"{BASE}/partners/{partners['CoffeeCo']}/contracts"
    form = {"billing": "prepaid", "point_value": "2.5", "issuance_fee": "0.1", "redemption_fee_rate": "0.03",
            "breakage_share": "0.2", "base_rate": "3", "effective_from": typed}
    answer = post_form(client, contracts, form, page=contracts)
    assert answer.status_code == 422 and 'data-code="validation_failed"' in answer.text
    assert "YYYY-MM-DD" in answer.text and 'role="alert"' in answer.text
    for name in ("point_value", "issuance_fee", "redemption_fee_rate", "breakage_share", "base_rate",
                 "effective_from"):  # the form comes back as it was sent
        assert re.search(f'name="{name}"[^>]* value="{re.escape(escape(form[name]))}"', answer.text), name
    assert '<option value="prepaid" selected>' in answer.text
    assert _requested(network) == []


def test_a_contract_version_dated_yyyy_mm_dd_is_requested_with_that_day(network, client_as, partners):
    client = client_as("operator")
    contracts = f"{BASE}/partners/{partners['CoffeeCo']}/contracts"
    answer = post_form(client, contracts, {"billing": "postpaid", "effective_from": "2026-12-01"}, page=contracts)
    assert answer.status_code == 303
    [requested] = _requested(network)
    assert requested["detail"]["params"]["effective_from"] == "2026-12-01"


@pytest.mark.parametrize("typed", LENIENT_INSTANTS)
def test_rules_need_an_rfc_3339_instant_and_keep_the_document(network, client_as, partners, typed):
    client = client_as("operator")
    for rules in (f"{BASE}/partners/{partners['CoffeeCo']}/rules", f"{BASE}/partners/network-rules"):
        answer = post_form(client, rules, {"document": RULES, "effective_from": typed}, page=rules)
        assert answer.status_code == 422 and 'data-code="validation_failed"' in answer.text
        assert "RFC 3339" in answer.text
        assert f'name="effective_from" value="{escape(typed)}"' in answer.text and RULES.strip() in answer.text
    assert network.tx(lambda tx: tx.session.scalar(select(func.count()).select_from(EarnRuleSet)),
                      readonly=True) == 0


@pytest.mark.parametrize("typed", ["2026-12-01T00:00:00+08:00", "2026-12-01T00:00:00.250Z", "2026-12-01t00:00:00z"])
def test_rules_take_an_rfc_3339_instant(network, client_as, partners, typed):
    client = client_as("operator")
    rules = f"{BASE}/partners/{partners['CoffeeCo']}/rules"
    assert post_form(client, rules, {"document": RULES, "effective_from": typed}, page=rules).status_code == 303


@pytest.mark.parametrize("path", ["/reports?from=20261101&to=2026-11-30", "/reports?from=2026-11-01&to=2026-W48-1",
                                  "/reports/network/download?from=2026-11-01&to=20261130&format=csv"])
def test_report_periods_are_yyyy_mm_dd(client_as, path):
    answer = client_as("finance").get(BASE + path)
    assert answer.status_code == 422 and 'data-code="invalid_period"' in answer.text


def test_a_partners_report_period_is_yyyy_mm_dd(client_as, partners):
    client = client_as("viewer")
    coffee = partners["CoffeeCo"]
    for query in ("from=20261101&to=2026-11-30", "from=2026-11-01&to=2026-W48-7"):
        answer = client.get(f"{BASE}/reports/partner/{coffee}?{query}")
        assert answer.status_code == 422 and 'data-code="invalid_period"' in answer.text


@pytest.fixture
def settled(network, clock, partners):
    coffee = partners["CoffeeCo"]
    network.earn(coffee, make_member(network, coffee), "coffee-1", points=500)
    clock.advance(days=1)
    network.settle(CYCLE)
    return coffee


@pytest.mark.parametrize("cycle", ["0", "1764547200", "2026-11-20T00:00:00Z", "2026-11-20T00:00:00"])
def test_a_settlement_cycle_in_an_address_is_yyyy_mm_dd(network, client_as, settled, cycle):
    client = client_as("finance")
    assert client.get(f"{BASE}/settlement/{CYCLE.isoformat()}").status_code == 200
    for path in (f"/settlement/{cycle}", f"/settlement/{cycle}/reconcile",
                 f"/settlement/{cycle}/files/network-summary.csv"):
        answer = client.get(BASE + path)
        assert answer.status_code == 422 and 'data-code="validation_failed"' in answer.text, path
        assert "YYYY-MM-DD" in answer.text
    paid = post_form(client, f"{BASE}/settlement/{cycle}/parties/{settled}/paid", {"bank_reference": "B-1"})
    assert paid.status_code == 422 and 'data-code="validation_failed"' in paid.text
    assert _requested(network) == []


@pytest.mark.parametrize("typed", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
def test_rules_effective_beyond_the_calendar_are_refused_as_a_422(network, client_as, partners, typed):
    """An instant whose UTC time lies beyond year 9999 (or before year 1) is refused like any instant
    that cannot be read, not answered with a 500."""
    client = client_as("operator")
    rules = f"{BASE}/partners/{partners['CoffeeCo']}/rules"
    answer = post_form(client, rules, {"document": RULES, "effective_from": typed}, page=rules)
    assert answer.status_code == 422 and 'data-code="validation_failed"' in answer.text
    assert f'name="effective_from" value="{escape(typed)}"' in answer.text
    assert network.tx(lambda tx: tx.session.scalar(select(func.count()).select_from(EarnRuleSet)),
                      readonly=True) == 0
