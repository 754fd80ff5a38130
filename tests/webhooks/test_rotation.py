"""Secret rotation with overlap: every secret a partner was promised keeps signing until its overlap
ends (docs/partner-integration.md §8, "Secret rotation"); a second rotation during an overlap is
refused unless it ends every older secret at once (overlap 0: the leaked-secret case)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from standardwebhooks.webhooks import WebhookVerificationError

from shared.webhooks.delivery import deliver_due
from shared.webhooks.endpoints import rotate_secret, show_endpoint
from shared.webhooks.errors import RotationOverlapRunning
from tests.dashboard import conftest as dashboard
from tests.dashboard.conftest import BASE, post_form
from tests.factories import make_member, make_partner
from tests.webhooks.conftest import register, verify_v1

# the dashboard's fixtures, for its test below (the settings only add plain-http cookies)
quick_password_hashing, settings, partners, staff, client_as = (
    dashboard.quick_password_hashing, dashboard.settings, dashboard.partners, dashboard.staff, dashboard.client_as)


def _deliver_one(network, receiver, shop, member, reference: str) -> dict:
    network.earn(shop, member, reference, points=5)
    deliver_due(network)
    return receiver.requests[-1]


def test_a_second_rotation_during_the_overlap_is_refused_and_the_first_secret_keeps_signing(
        network, clock, receiver):
    shop = make_partner(network)
    s0 = register(network, receiver, shop)["secret"]
    member = make_member(network, shop)
    s1 = network.tx(lambda tx: rotate_secret(tx, shop, timedelta(hours=24)))["secret"]
    clock.advance(hours=1)

    with pytest.raises(RotationOverlapRunning) as refused:
        network.tx(lambda tx: rotate_secret(tx, shop, timedelta(hours=24)))
    problem = refused.value.to_problem()
    assert problem["status"] == 409 and problem["code"] == "rotation_overlap_running"
    assert problem["overlap_ends_at"] == "2026-11-21T02:00:00+00:00"
    assert "2026-11-21T02:00:00" in problem["detail"]
    assert network.tx(lambda tx: show_endpoint(tx, shop), readonly=True)["previous_secret_expires_at"] == \
        "2026-11-21T02:00:00+00:00"  # nothing changed

    clock.advance(hours=1)  # 2 hours into S0's 24-hour overlap: S0 and S1 both verify
    during = _deliver_one(network, receiver, shop, member, "during")
    verify_v1(s0, during, clock.now())
    verify_v1(s1, during, clock.now())

    clock.advance(hours=22)  # the overlap is over: a rotation is accepted again
    s2 = network.tx(lambda tx: rotate_secret(tx, shop, timedelta(hours=24)))["secret"]
    after = _deliver_one(network, receiver, shop, member, "after")
    verify_v1(s1, after, clock.now())
    verify_v1(s2, after, clock.now())
    with pytest.raises(WebhookVerificationError):
        verify_v1(s0, after, clock.now())


def test_a_rotation_with_no_overlap_ends_every_older_secret_at_once(network, clock, receiver):
    """A leaked secret: rotating with overlap 0 is accepted during an overlap and only the new secret signs."""
    shop = make_partner(network)
    s0 = register(network, receiver, shop)["secret"]
    member = make_member(network, shop)
    s1 = network.tx(lambda tx: rotate_secret(tx, shop, timedelta(hours=24)))["secret"]
    clock.advance(hours=1)
    s2 = network.tx(lambda tx: rotate_secret(tx, shop, timedelta(0)))["secret"]
    request = _deliver_one(network, receiver, shop, member, "after-leak")
    verify_v1(s2, request, clock.now())
    assert [s.split(",")[0] for s in request["headers"]["webhook-signature"].split(" ")] == ["v1", "v1a"]
    for old in (s0, s1):
        with pytest.raises(WebhookVerificationError):
            verify_v1(old, request, clock.now())
    s3 = network.tx(lambda tx: rotate_secret(tx, shop, timedelta(hours=24)))["secret"]  # no overlap running
    assert s3 not in (s0, s1, s2)


def test_the_dashboard_shows_why_a_second_rotation_is_refused(network, client_as, partners):
    coffee = partners["CoffeeCo"]
    client = client_as("operator")
    hooks = f"{BASE}/partners/{coffee}/webhooks"
    assert post_form(client, hooks, {"url": "http://127.0.0.1:9/hook"}, page=hooks).status_code == 200
    first = post_form(client, f"{hooks}/rotate-secret", {"overlap_hours": "24"}, page=hooks)
    assert first.status_code == 200 and "whsec_" in first.text
    again = post_form(client, f"{hooks}/rotate-secret", {"overlap_hours": "24"}, page=hooks)
    assert again.status_code == 409 and 'data-code="rotation_overlap_running"' in again.text
    assert "whsec_" not in again.text and "2026-11-21T02:00:00" in again.text
    leaked = post_form(client, f"{hooks}/rotate-secret", {"overlap_hours": "0"}, page=hooks)
    assert leaked.status_code == 200 and "whsec_" in leaked.text
