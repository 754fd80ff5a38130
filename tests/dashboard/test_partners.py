"""Partners pages over HTTP: roles, CSRF, onboarding, contracts (maker-checker), keys, webhooks,
earn rules, suspension — and that every change is audited."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, insert, select

from shared.access import audit
from shared.ledger.cycles import cycle_date_for
from shared.models import Contract, EarnRuleSet, Partner, PartnerKey, PendingAction
from shared.partners import keys as partner_keys
from shared.partners.contracts import ContractTerms, add_contract_version
from shared.signing import public_key_pem
from shared.webhooks.endpoints import set_endpoint
from tests.dashboard.conftest import BASE, csrf_of, post_form


def pem() -> str:
    return public_key_pem(Ed25519PrivateKey.generate().public_key()).decode()


def audited(network, action: str, target: str | None = None) -> list[dict]:
    rows, _ = network.tx(lambda tx: audit.page(tx, action=action, target=target), readonly=True)
    return rows


def count(network, model, *where) -> int:
    return network.tx(lambda tx: tx.session.scalar(select(func.count()).select_from(model).where(*where)),
                      readonly=True)


ONBOARD = {"name": "TeaHouse", "billing": "prepaid", "point_value": "1.5", "issuance_fee": "0.1",
           "redemption_fee_rate": "0.05", "breakage_share": "0.2", "base_rate": "2"}


def test_operators_and_finance_see_the_directory_and_a_partner_viewer_does_not(client_as, partners):
    for who in ("operator", "finance"):
        listing = client_as(who).get(f"{BASE}/partners")
        assert listing.status_code == 200
        assert all(f'data-partner="{pid}"' in listing.text for pid in partners.values())
    viewer = client_as("viewer")
    for path in ("/partners", f"/partners/{partners['BookMart']}", f"/partners/{partners['CoffeeCo']}/keys",
                 f"/partners/{partners['BookMart']}/webhooks", f"/partners/{partners['BookMart']}/rules",
                 f"/partners/{partners['BookMart']}/contracts"):
        answer = viewer.get(BASE + path)
        assert answer.status_code == 403 and 'data-code="forbidden"' in answer.text, path


def test_the_directory_paginates_and_filters_by_name(network, client_as, partners):
    for n in range(5):
        network.create_partner(f"Shop {n}")
    client = client_as("finance")
    first = client.get(f"{BASE}/partners?limit=3")
    assert first.text.count("data-partner=") == 3 and "offset=3" in first.text
    assert "1–3 of 7" in first.text
    filtered = client.get(f"{BASE}/partners?name=shop%203")
    assert filtered.text.count("data-partner=") == 1 and "Shop 3" in filtered.text


def test_onboarding_creates_partner_contract_key_and_audit_entry_at_once(network, client_as):
    client = client_as("operator")
    form = client.get(f"{BASE}/partners/new")
    answer = client.post(f"{BASE}/partners", data=ONBOARD | {"public_key": pem(), "csrf_token": csrf_of(form.text)},
                         headers={"origin": "http://testserver"})
    assert answer.status_code == 303
    partner_id = answer.headers["location"].split("/partners/")[1].split("?")[0]
    page = client.get(answer.headers["location"])
    assert "TeaHouse" in page.text and 'data-message="created"' in page.text
    contract = network.tx(lambda tx: tx.session.scalar(select(Contract).where(Contract.partner_id == partner_id)),
                          readonly=True)
    assert (contract.billing, contract.point_value_micro, contract.issuance_fee_micro, contract.redemption_fee_ppm,
            contract.breakage_share_ppm, contract.base_rate_micro) == ("prepaid", 1_500_000, 100_000, 50_000,
                                                                       200_000, 2_000_000)
    assert count(network, PartnerKey, PartnerKey.partner_id == partner_id, PartnerKey.status == "active") == 1
    [entry] = audited(network, "partner.created", partner_id)
    assert entry["user"] == "op@example.org" and entry["detail"]["terms"]["billing"] == "prepaid"
    # a prepaid partner's float is enforced at once, no overdraft, as `pointsnet partners add` makes it:
    # onboarded here it had no float limit, and issued points with nothing topped up
    from shared.partners.limits import FloatExhausted
    from tests.factories import make_member

    member = make_member(network, partner_id)
    with pytest.raises(FloatExhausted):
        network.earn(partner_id, member, "unfunded-1", points=10)


@pytest.mark.parametrize("change, code", [
    ({"public_key": "not a key"}, "validation_failed"),
    ({"redemption_fee_rate": "1.5"}, "validation_failed"),
    ({"point_value": "0.0000001"}, "validation_failed"),
    ({"billing": "monthly"}, "validation_failed"),
    ({"name": "CoffeeCo"}, "validation_failed"),
    ({"name": "  "}, "validation_failed"),
])
def test_a_refused_onboarding_shows_why_beside_the_form_and_creates_nothing(network, client_as, partners, change,
                                                                           code):
    client = client_as("operator")
    before = count(network, Partner)
    answer = post_form(client, f"{BASE}/partners", ONBOARD | change, page=f"{BASE}/partners/new")
    assert answer.status_code == 422
    assert f'data-code="{code}"' in answer.text and 'data-testid="onboard-form"' in answer.text
    assert count(network, Partner) == before and audited(network, "partner.created") == []


def test_finance_cannot_onboard_or_change_anything(network, client_as, partners):
    client = client_as("finance")
    coffee = partners["CoffeeCo"]
    assert client.get(f"{BASE}/partners/new").status_code == 403
    page = client.get(f"{BASE}/partners/{coffee}")
    assert 'action="/dashboard/partners/' not in page.text  # no forms for finance
    for path, data in (("/partners", ONBOARD), (f"/partners/{coffee}/status", {"status": "suspended"}),
                       (f"/partners/{coffee}/keys", {"public_key": pem()}),
                       (f"/partners/{coffee}/webhooks", {"url": "https://example.org/hook"}),
                       (f"/partners/{coffee}/rules", {"document": "{}"}),
                       (f"/partners/{coffee}/contracts", {"billing": "postpaid"})):
        answer = post_form(client, BASE + path, data, page=f"{BASE}/partners")
        assert answer.status_code == 403 and 'data-code="forbidden"' in answer.text, path
    assert count(network, Partner) == 2 and count(network, PartnerKey) == 0


def test_a_form_without_a_valid_csrf_token_is_refused(network, client_as, partners):
    client = client_as("operator")
    coffee = partners["CoffeeCo"]
    for data in ({}, {"csrf_token": "forged"}):
        answer = client.post(f"{BASE}/partners/{coffee}/keys", data=data | {"public_key": pem()},
                             headers={"origin": "http://testserver"})
        assert answer.status_code == 403 and 'data-code="csrf_rejected"' in answer.text
    cross_site = client.post(f"{BASE}/partners/{coffee}/status",
                             data={"status": "suspended", "csrf_token": csrf_of(client.get(f"{BASE}/partners").text)},
                             headers={"origin": "https://evil.example"})
    assert cross_site.status_code == 403
    assert count(network, PartnerKey) == 0
    assert network.tx(lambda tx: tx.session.get(Partner, coffee).status, readonly=True) == "active"


def test_keys_rotate_by_adding_then_revoking_and_both_are_audited(network, client_as, partners):
    client = client_as("operator")
    coffee = partners["CoffeeCo"]
    keys_page = f"{BASE}/partners/{coffee}/keys"
    assert post_form(client, keys_page, {"public_key": pem()}, page=keys_page).status_code == 303
    assert post_form(client, keys_page, {"public_key": pem()}, page=keys_page).status_code == 303
    third = post_form(client, keys_page, {"public_key": pem()}, page=keys_page)
    assert third.status_code == 409 and 'data-code="too_many_keys"' in third.text
    old, new = [k["key_id"] for k in network.tx(lambda tx: partner_keys.list_keys(tx, coffee), readonly=True)]
    revoked = post_form(client, f"{keys_page}/{old}/revoke", page=keys_page)
    assert revoked.status_code == 303
    listing = client.get(keys_page).text
    assert f'data-key="{old}" data-status="revoked"' in listing and f'data-key="{new}" data-status="active"' in listing
    assert [e["detail"]["key_id"] for e in audited(network, "partner.key_added", coffee)] == [new, old]
    assert [e["detail"]["key_id"] for e in audited(network, "partner.key_revoked", coffee)] == [old]


def test_a_key_is_revoked_only_through_its_own_partner(network, client_as, partners):
    key_id = network.tx(lambda tx: partner_keys.add_key(tx, partners["BookMart"], pem()))["key_id"]
    client = client_as("operator")
    coffee_keys = f"{BASE}/partners/{partners['CoffeeCo']}/keys"
    answer = post_form(client, f"{coffee_keys}/{key_id}/revoke", page=coffee_keys)
    assert answer.status_code == 404 and 'data-code="unknown_key"' in answer.text
    assert count(network, PartnerKey, PartnerKey.status == "active") == 1


def test_contract_change_waits_for_a_second_operator(network, client_as, partners):
    coffee = partners["CoffeeCo"]
    maker, checker = client_as("operator"), client_as("checker")
    contracts = f"{BASE}/partners/{coffee}/contracts"
    form = {"billing": "postpaid", "point_value": "2", "issuance_fee": "0", "redemption_fee_rate": "0.03",
            "breakage_share": "0", "base_rate": "1", "effective_from": ""}
    answer = post_form(maker, contracts, form, page=contracts)
    assert answer.status_code == 303 and "message=requested" in answer.headers["location"]
    assert count(network, Contract, Contract.partner_id == coffee) == 1
    pending = maker.get(f"{BASE}/approvals").text
    pending_id = pending.split('data-pending="')[1].split('"')[0]
    refused = post_form(maker, f"{BASE}/approvals/{pending_id}/approve", page=f"{BASE}/approvals")
    assert 'data-code="four_eyes_required"' in refused.text
    assert post_form(checker, f"{BASE}/approvals/{pending_id}/approve",
                     page=f"{BASE}/approvals").status_code == 303
    versions = maker.get(contracts).text
    assert 'data-version="2"' in versions and "0.03" in versions
    assert count(network, Contract, Contract.partner_id == coffee) == 2
    [done] = audited(network, "contract_change", coffee)
    assert done["user"] == "checker@example.org" and done["detail"]["outcome"]["contract_version"] == 2


def test_a_bad_contract_change_is_refused_before_it_is_queued(network, client_as, partners):
    client = client_as("operator")
    contracts = f"{BASE}/partners/{partners['CoffeeCo']}/contracts"
    for bad in ({"redemption_fee_rate": "2"}, {"effective_from": "tomorrow"}):
        answer = post_form(client, contracts, {"billing": "postpaid"} | bad, page=contracts)
        assert answer.status_code == 422 and 'data-code="validation_failed"' in answer.text
    assert audited(network, "approval.requested") == []


@pytest.mark.parametrize("term, bound", [("point_value", "9223372036854.775807"),
                                         ("issuance_fee", "9223372036854.775807"), ("base_rate", "1000000000000")])
def test_a_term_too_large_for_the_ledger_is_refused_beside_the_form(network, client_as, partners, term, bound):
    """Onboarding and a contract change with a money term above 9223372036854.775807 (its millionths do
    not fit the 64-bit column) or a base rate above the earn rules' cap answer 422 with the term and its
    bound beside the form, not a 500 from the database; no partner is created and no change is queued."""
    client = client_as("operator")
    before = count(network, Partner)
    onboarded = post_form(client, f"{BASE}/partners", ONBOARD | {term: "1e30"}, page=f"{BASE}/partners/new")
    assert onboarded.status_code == 422 and 'data-code="validation_failed"' in onboarded.text
    assert f"{term}: 1e30 must be at most {bound}" in onboarded.text
    assert count(network, Partner) == before and audited(network, "partner.created") == []
    contracts = f"{BASE}/partners/{partners['CoffeeCo']}/contracts"
    changed = post_form(client, contracts, {"billing": "postpaid", term: "1e30"}, page=contracts)
    assert changed.status_code == 422 and 'data-code="validation_failed"' in changed.text
    assert f"{term}: 1e30 must be at most {bound}" in changed.text
    assert audited(network, "approval.requested") == []


CONTRACT_FORM = {"billing": "postpaid", "point_value": "1", "issuance_fee": "0", "redemption_fee_rate": "0",
                 "breakage_share": "0", "base_rate": "2"}


@pytest.mark.parametrize("when", ["past", "today", "before_the_latest"])
def test_a_contract_change_that_could_never_be_approved_is_refused_before_it_is_queued(network, client_as, partners,
                                                                                     when):
    """A date in the past, today's cycle, or a day not after a version already added could never be
    approved (contract_not_at_boundary at approval): refused beside the form when asked, what was typed
    kept, nothing queued."""
    coffee = partners["CoffeeCo"]
    contracts = f"{BASE}/partners/{coffee}/contracts"
    today = network.tx(lambda tx: cycle_date_for(tx.now, tx.settings), readonly=True)
    if when == "before_the_latest":
        network.tx(lambda tx: add_contract_version(tx, coffee, ContractTerms(), today + timedelta(days=5)))
    effective = {"past": date(2001, 1, 1), "today": today, "before_the_latest": today + timedelta(days=3)}[when]
    client = client_as("operator")
    answer = post_form(client, contracts, CONTRACT_FORM | {"effective_from": effective.isoformat()}, page=contracts)
    assert answer.status_code == 409 and 'data-code="contract_not_at_boundary"' in answer.text
    assert f'value="{effective}"' in answer.text and 'value="2"' in answer.text  # the form as typed
    assert count(network, PendingAction) == 0 and audited(network, "approval.requested") == []


def test_a_contract_change_refused_without_four_eyes_changes_nothing(network, client_as, partners):
    """Without maker-checker the change runs at once: the same refusal, beside the form."""
    network.settings.four_eyes_actions = frozenset()
    coffee = partners["CoffeeCo"]
    contracts = f"{BASE}/partners/{coffee}/contracts"
    client = client_as("operator")
    answer = post_form(client, contracts, CONTRACT_FORM | {"effective_from": "2001-01-01"}, page=contracts)
    assert answer.status_code == 409 and 'data-code="contract_not_at_boundary"' in answer.text
    assert count(network, Contract, Contract.partner_id == coffee) == 1 and audited(network, "contract_change") == []


def test_a_contract_change_whose_day_has_come_fails_at_approval(network, client_as, partners, clock):
    """Filed for tomorrow, approved only after tomorrow's cycle began: refused at approval too."""
    from shared.ledger.cycles import cycle_end

    coffee = partners["CoffeeCo"]
    maker = client_as("operator")
    contracts = f"{BASE}/partners/{coffee}/contracts"
    today = network.tx(lambda tx: cycle_date_for(tx.now, tx.settings), readonly=True)
    filed = post_form(maker, contracts, {"billing": "postpaid", "effective_from": str(today + timedelta(days=1))},
                      page=contracts)
    assert filed.status_code == 303 and "message=requested" in filed.headers["location"]
    pending_id = maker.get(f"{BASE}/approvals").text.split('data-pending="')[1].split('"')[0]
    clock.set(cycle_end(today, network.settings) + timedelta(minutes=1))
    checker = client_as("checker")  # signed in now: the maker's session has lapsed meanwhile
    answer = post_form(checker, f"{BASE}/approvals/{pending_id}/approve", page=f"{BASE}/approvals")
    assert 'data-code="contract_not_at_boundary"' in answer.text
    failed = checker.get(f"{BASE}/approvals?status=failed").text
    assert f'data-pending="{pending_id}"' in failed
    assert count(network, Contract, Contract.partner_id == coffee) == 1


def test_a_contract_version_beyond_the_ten_year_horizon_is_refused_before_it_is_queued(network, client_as, partners):
    """9999-12-31 is a valid YYYY-MM-DD, but more than 10 years ahead: refused beside the form (422, the
    reason shown, what was typed kept), nothing queued, and the tab keeps working."""
    client = client_as("operator")
    contracts = f"{BASE}/partners/{partners['CoffeeCo']}/contracts"
    answer = post_form(client, contracts, {"billing": "postpaid", "point_value": "7", "effective_from": "9999-12-31"},
                       page=contracts)
    assert answer.status_code == 422 and 'data-code="validation_failed"' in answer.text
    assert "at most 10 years ahead" in answer.text and 'value="9999-12-31"' in answer.text
    assert audited(network, "approval.requested") == []
    assert client.get(contracts).status_code == 200


def test_the_contracts_tab_works_with_a_version_on_the_calendars_last_day(network, client_as, partners):
    """A version dated 9999-12-31, stored before the horizon existed: the tab still lists it and its form
    still suggests a date (there is no day after it to suggest), never an overflow (a 500)."""
    coffee = partners["CoffeeCo"]
    network.tx(lambda tx: tx.session.execute(insert(Contract.__table__).values(
        id="ctr_lastday", partner_id=coffee, version=2, effective_from=date(9999, 12, 31), created_at=tx.now,
        **ContractTerms().to_columns())))
    client = client_as("operator")
    client._transport.raise_server_exceptions = False
    answer = client.get(f"{BASE}/partners/{coffee}/contracts")
    assert answer.status_code == 200 and 'data-version="2"' in answer.text
    assert 'value="9999-12-31"' in answer.text


def test_suspension_and_reactivation_go_through_maker_checker(network, client_as, partners):
    coffee = partners["CoffeeCo"]
    maker, checker = client_as("operator"), client_as("checker")
    page = f"{BASE}/partners/{coffee}"
    for status in ("suspended", "active"):
        assert post_form(maker, f"{page}/status", {"status": status}, page=page).status_code == 303
        assert network.tx(lambda tx: tx.session.get(Partner, coffee).status, readonly=True) != status
        pending_id = maker.get(f"{BASE}/approvals").text.split('data-pending="')[1].split('"')[0]
        post_form(checker, f"{BASE}/approvals/{pending_id}/approve", page=f"{BASE}/approvals")
        assert network.tx(lambda tx: tx.session.get(Partner, coffee).status, readonly=True) == status
    assert len(audited(network, "partner_suspension", coffee)) == 2
    assert 'data-status="active"' in maker.get(page).text


def test_the_partner_page_links_to_its_performance_report(client_as, partners):
    page = client_as("finance").get(f"{BASE}/partners/{partners['CoffeeCo']}").text
    assert f'href="{BASE}/reports/partner/{partners["CoffeeCo"]}"' in page


def test_webhook_endpoint_set_rotate_disable_each_audited_and_the_secret_shown_once(network, client_as, partners):
    coffee = partners["CoffeeCo"]
    client = client_as("operator")
    hooks = f"{BASE}/partners/{coffee}/webhooks"
    refused = post_form(client, hooks, {"url": "ftp://example.org"}, page=hooks)
    assert refused.status_code == 422 and 'data-code="invalid_webhook_url"' in refused.text
    created = post_form(client, hooks, {"url": "http://127.0.0.1:9/hook"}, page=hooks)
    assert created.status_code == 200 and "whsec_" in created.text
    secret = created.text.split('data-testid="webhook-secret">')[1].split("<")[0]
    assert secret not in client.get(hooks).text  # shown once only
    rotated = post_form(client, f"{hooks}/rotate-secret", {"overlap_hours": "1"}, page=hooks)
    assert "whsec_" in rotated.text and secret not in rotated.text
    assert post_form(client, f"{hooks}/disable", page=hooks).status_code == 303
    assert 'data-testid="webhook-state">disabled' in client.get(hooks).text
    actions = [e["action"] for e in audited(network, None, coffee)]
    assert actions == ["webhook.disabled", "webhook.secret_rotated", "webhook.set"]
    assert all("whsec_" not in json.dumps(e["detail"]) for e in audited(network, None, coffee))


def test_webhook_backlog_dead_letters_and_replay(network, client_as, partners):
    from shared.models import WebhookDelivery
    from shared.webhooks.outbox import emit
    from sqlalchemy import update

    coffee = partners["CoffeeCo"]
    network.tx(lambda tx: set_endpoint(tx, coffee, "http://127.0.0.1:9/hook"))
    ids = network.tx(lambda tx: emit(tx, "tier.changed", {"n": 1}, partner_ids=[coffee])
                     + emit(tx, "tier.changed", {"n": 2}, partner_ids=[coffee]))
    network.tx(lambda tx: tx.session.execute(update(WebhookDelivery).where(WebhookDelivery.id == ids[0])
                                             .values(status="dead", dead_at=tx.now)))
    client = client_as("operator")
    hooks = f"{BASE}/partners/{coffee}/webhooks"
    page = client.get(hooks).text
    assert 'data-testid="webhook-backlog"' in page and f'data-delivery="{ids[0]}" data-status="dead"' in page
    dead_only = client.get(f"{hooks}?status=dead").text
    assert dead_only.count("data-delivery=") == 1
    replayed = post_form(client, f"{hooks}/deliveries/{ids[0]}/replay", page=hooks)
    assert replayed.status_code == 303
    [entry] = audited(network, "webhook.replayed", coffee)
    assert entry["detail"] == {"delivery_id": ids[0], "previous_status": "dead"}
    other = post_form(client, f"{BASE}/partners/{partners['BookMart']}/webhooks/deliveries/{ids[1]}/replay",
                      page=hooks)
    assert other.status_code == 404


def test_changing_the_webhook_url_does_not_show_the_existing_secret_again(network, client_as, partners):
    """docs/dashboard.md (Webhook tab): "A new secret is shown **once**, right after it is made"."""
    coffee = partners["CoffeeCo"]
    client = client_as("operator")
    hooks = f"{BASE}/partners/{coffee}/webhooks"
    created = post_form(client, hooks, {"url": "http://127.0.0.1:9/hook"}, page=hooks)
    secret = created.text.split('data-testid="webhook-secret">')[1].split("<")[0]
    assert secret.startswith("whsec_")
    # another operator (or the same one, later) only changes the URL: no new secret is made
    changed = post_form(client_as("operator"), hooks, {"url": "http://127.0.0.1:10/hook"}, page=hooks)
    assert changed.status_code == 303 and secret not in changed.text and "whsec_" not in changed.text
    shown = client.get(hooks).text
    assert "http://127.0.0.1:10/hook" in shown and secret not in shown
    post_form(client, f"{hooks}/disable", page=hooks)
    enabled = post_form(client, hooks, {"url": "http://127.0.0.1:10/hook"}, page=hooks)  # enabled again
    assert enabled.status_code == 303 and "whsec_" not in enabled.text
    assert [e["action"] for e in audited(network, None, coffee)] == [
        "webhook.set", "webhook.disabled", "webhook.set", "webhook.set"]


@pytest.mark.parametrize("url", ["https://[::1", "https://[fe80::1/hook", "https://example.org:99999/hook",
                                 "https://example.org:0/hook"])
def test_an_unparsable_webhook_url_or_an_impossible_port_is_refused_in_the_dashboard(network, client_as,
                                                                                       partners, url):
    hooks = f"{BASE}/partners/{partners['CoffeeCo']}/webhooks"
    answer = post_form(client_as("operator"), hooks, {"url": url}, page=hooks)
    assert answer.status_code == 422 and 'data-code="invalid_webhook_url"' in answer.text, answer.status_code
    assert 'data-testid="webhook-state">no endpoint' in answer.text
    assert audited(network, "webhook.set", partners["CoffeeCo"]) == []


def test_replaying_a_delivery_in_flight_is_refused_and_its_outcome_kept(network, client_as, partners):
    """docs/dashboard.md: *Replay* sends a delivered or dead event again. A message a worker is sending
    right now (pending, leased) is refused (409 delivery_pending), not reset under the worker."""
    from shared.models import WebhookDelivery
    from shared.webhooks import delivery as wd
    from shared.webhooks.outbox import emit

    coffee = partners["CoffeeCo"]
    network.tx(lambda tx: set_endpoint(tx, coffee, "http://127.0.0.1:9/hook"))
    [msg] = network.tx(lambda tx: emit(tx, "tier.changed", {"n": 1}, partner_ids=[coffee]))
    [claimed] = network.tx(lambda tx: wd.claim_due(tx))  # a worker leased it and is sending it now
    client = client_as("operator")
    hooks = f"{BASE}/partners/{coffee}/webhooks"
    refused = post_form(client, f"{hooks}/deliveries/{msg}/replay", page=hooks)
    assert refused.status_code == 409 and 'data-code="delivery_pending"' in refused.text
    assert f'data-delivery="{msg}" data-status="pending"' in refused.text  # the webhook page, with the reason
    assert audited(network, "webhook.replayed", coffee) == []
    # the worker's send succeeded: recorded as delivered, not thrown away as stale
    status = network.tx(lambda tx: wd.record(tx, claimed, wd.Outcome(200, None, 5)))
    row = network.tx(lambda tx: tx.session.execute(select(WebhookDelivery.status, WebhookDelivery.attempts)
                                                   .where(WebhookDelivery.id == msg)).one(), readonly=True)
    assert (status, tuple(row)) == ("delivered", ("delivered", 1))


RULES = """
base_rate: 2
campaigns:
  - id: double-days
    name: Double points
    starts_on: 2026-12-01
    ends_on: 2026-12-31
    multiplier: 2
"""


def test_rules_are_validated_like_the_cli_and_versions_listed(network, client_as, partners):
    coffee = partners["CoffeeCo"]
    client = client_as("operator")
    rules = f"{BASE}/partners/{coffee}/rules"
    bad_yaml = post_form(client, rules, {"document": "base_rate: [1,\n  2"}, page=rules)
    assert bad_yaml.status_code == 422 and "line" in bad_yaml.text  # the parser's position is shown
    assert "base_rate: [1," in bad_yaml.text  # the document is kept for correction
    bad_field = post_form(client, rules, {"document": RULES.replace("multiplier: 2", "multiplier: 1")}, page=rules)
    assert bad_field.status_code == 422 and "campaigns.0" in bad_field.text
    assert count(network, EarnRuleSet) == 0
    assert post_form(client, rules, {"document": RULES}, page=rules).status_code == 303
    assert post_form(client, rules, {"document": RULES.replace("base_rate: 2", "base_rate: 3")},
                     page=rules).status_code == 303
    page = client.get(rules).text
    assert 'data-version="2"' in page and 'data-version="1"' in page and "double-days" in page
    assert [e["detail"]["version"] for e in audited(network, "partner.rules_set", coffee)] == [2, 1]
    past = post_form(client, rules, {"document": RULES, "effective_from": "2020-01-01T00:00:00Z"}, page=rules)
    assert past.status_code == 422


def test_an_unknown_partner_is_not_found(client_as):
    answer = client_as("operator").get(f"{BASE}/partners/ptn_nobody")
    assert answer.status_code == 404 and 'data-code="unknown_partner"' in answer.text


NETWORK_RULES = """
campaigns:
  - id: singles-day
    name: Singles' Day
    starts_on: 2026-11-11
    ends_on: 2026-11-11
    bonus_points: 50
    funded_by: network
"""


def test_network_wide_campaigns_have_their_own_editor(network, client_as, partners):
    client = client_as("operator")
    rules = f"{BASE}/partners/network-rules"
    assert 'data-testid="network-rules-link"' in client.get(f"{BASE}/partners").text
    partner_funded = post_form(client, rules, {"document": NETWORK_RULES.replace("network\n", "partner\n")},
                               page=rules)
    assert partner_funded.status_code == 422 and "funded by the network" in partner_funded.text
    assert post_form(client, rules, {"document": NETWORK_RULES}, page=rules).status_code == 303
    assert 'data-version="1"' in client_as("finance").get(rules).text
    assert [e["target"] for e in audited(network, "network.rules_set")] == ["network"]
    assert client.get(f"{BASE}/partners/network/rules").status_code == 404
    assert post_form(client, f"{BASE}/partners/network/rules", {"document": NETWORK_RULES},
                     page=rules).status_code == 404


def test_the_contracts_form_suggests_the_first_date_a_version_may_take_effect(network, client_as, partners, clock):
    """Five minutes before the cut-off, tomorrow's cycle begins within the notice a version needs
    (CONTRACT_NOTICE): the form suggests the day after, which the approval then accepts."""
    from datetime import timedelta

    from shared.ledger.cycles import cycle_end

    coffee = partners["CoffeeCo"]
    today = cycle_date_for(clock.now(), network.settings)
    client = client_as("operator")
    assert f'value="{today + timedelta(days=1)}"' in client.get(f"{BASE}/partners/{coffee}/contracts").text
    clock.set(cycle_end(today, network.settings) - timedelta(minutes=5))
    client = client_as("operator")  # signed in afresh: the clock moved past the last session's life
    assert f'value="{today + timedelta(days=2)}"' in client.get(f"{BASE}/partners/{coffee}/contracts").text
