"""Every number typed into the dashboard is read in the ASCII digits 0-9 (a leading minus where a negative
number is allowed): int(), float() and Decimal() also read full-width (１２) or Arabic-Indic (١٢) digits,
which an operator did not mean to type; so do a plus sign, "1_000" or "nan"."""

from __future__ import annotations

import pytest

from shared.access import audit
from shared.models import Contract, Partner
from tests.dashboard.conftest import BASE, post_form
from tests.dashboard.test_members import EMAIL, PHONE
from tests.dashboard.test_partners import ONBOARD, count

NOT_ASCII = ["１２", "١٢", "1２", "-１２"]


def audited(network, action: str | None, target: str | None = None) -> list[dict]:
    return network.tx(lambda tx: audit.page(tx, action=action, target=target), readonly=True)[0]


@pytest.fixture
def member(network, partners) -> str:
    member_id = network.enrol(partners["CoffeeCo"], phone=PHONE, email=EMAIL)["member_id"]
    network.earn(partners["CoffeeCo"], member_id, "e1", points=120)
    return member_id


@pytest.mark.parametrize("points", NOT_ASCII + ["+12", "1_2", "12.0", "1" * 5000, "-" + "9" * 13])
def test_points_are_read_in_ascii_digits_only(network, client_as, member, points):
    client = client_as("operator")
    page = f"{BASE}/members/{member}"
    answer = post_form(client, f"{page}/adjustments", {"points": points, "reason": "x", "request_key": "k1"},
                       page=page)
    assert answer.status_code == 422 and 'data-code="invalid_points"' in answer.text, answer.text
    assert audited(network, "approval.requested") == []


@pytest.mark.parametrize("term", ["point_value", "issuance_fee", "redemption_fee_rate", "breakage_share",
                                  "base_rate"])
@pytest.mark.parametrize("value", ["１", "٠.٥", "0.０5"])
def test_contract_terms_are_read_in_ascii_digits_only(network, client_as, partners, term, value):
    client = client_as("operator")
    before = count(network, Partner)
    onboarded = post_form(client, f"{BASE}/partners", ONBOARD | {"name": "TeaHouse", term: value},
                          page=f"{BASE}/partners/new")
    assert onboarded.status_code == 422 and 'data-code="validation_failed"' in onboarded.text, onboarded.text
    assert count(network, Partner) == before

    contracts = f"{BASE}/partners/{partners['CoffeeCo']}/contracts"
    form = {"billing": "postpaid", "point_value": "2", "issuance_fee": "0", "redemption_fee_rate": "0.03",
            "breakage_share": "0", "base_rate": "1", "effective_from": ""} | {term: value}
    changed = post_form(client, contracts, form, page=contracts)
    assert changed.status_code == 422 and 'data-code="validation_failed"' in changed.text, changed.text
    assert audited(network, "approval.requested") == []
    assert count(network, Contract, Contract.partner_id == partners["CoffeeCo"]) == 1


def test_ascii_terms_are_read_as_before_and_a_sign_is_refused(network, client_as, partners):
    client = client_as("operator")
    for n, value in enumerate(("1.50", "1e2", ".5")):
        accepted = post_form(client, f"{BASE}/partners", ONBOARD | {"name": f"TeaHouse{n}", "point_value": value},
                             page=f"{BASE}/partners/new")
        assert accepted.status_code == 303, value
    for value in ("-1", "+1", " ", "1_0", "nan", "Infinity"):
        refused = post_form(client, f"{BASE}/partners", ONBOARD | {"name": "TeaHouse2", "point_value": value},
                            page=f"{BASE}/partners/new")
        assert refused.status_code == 422, value


@pytest.mark.parametrize("hours", ["２４", "١", "1_0", "+1", "nan", "inf"])
def test_a_webhook_overlap_is_read_in_ascii_digits_only(network, client_as, partners, hours):
    coffee = partners["CoffeeCo"]
    client = client_as("operator")
    hooks = f"{BASE}/partners/{coffee}/webhooks"
    assert post_form(client, hooks, {"url": "http://127.0.0.1:9/hook"}, page=hooks).status_code == 200
    refused = post_form(client, f"{hooks}/rotate-secret", {"overlap_hours": hours}, page=hooks)
    assert refused.status_code == 422 and 'data-code="validation_failed"' in refused.text, refused.text
    assert "whsec_" not in refused.text
    assert [e["action"] for e in audited(network, None, coffee)] == ["webhook.set"]
    rotated = post_form(client, f"{hooks}/rotate-secret", {"overlap_hours": "1.5"}, page=hooks)
    assert rotated.status_code == 200 and "whsec_" in rotated.text
