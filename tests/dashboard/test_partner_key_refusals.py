"""The dashboard's onboarding and add-key forms with a weak Ed25519 public key, or a PEM key on a curve
the network does not know: 422 ``validation_failed`` beside the form, nothing registered (was 200
for the weak key, 500 for the foreign curve)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from shared.models import Partner, PartnerKey
from tests.dashboard.conftest import BASE, post_form
from tests.dashboard.test_partners import ONBOARD
from tests.partner_api.test_weak_keys import IDENTITY, SECP112R1_PEM, spki_pem

REFUSED = {"weak": (spki_pem(IDENTITY), "weak Ed25519 public key"),
           "foreign curve": (SECP112R1_PEM, "not an Ed25519 public key")}


def count(network, model) -> int:
    return network.tx(lambda tx: tx.session.scalar(select(func.count()).select_from(model)), readonly=True)


@pytest.mark.parametrize("kind", list(REFUSED))
def test_onboarding_with_a_refused_key_creates_nothing(network, client_as, partners, kind):
    text, says = REFUSED[kind]
    client = client_as("operator")
    before = count(network, Partner)
    answer = post_form(client, f"{BASE}/partners", ONBOARD | {"public_key": text}, page=f"{BASE}/partners/new")
    assert answer.status_code == 422 and 'data-code="validation_failed"' in answer.text
    assert says in answer.text and 'data-testid="onboard-form"' in answer.text
    assert count(network, Partner) == before and count(network, PartnerKey) == 0


@pytest.mark.parametrize("kind", list(REFUSED))
def test_adding_a_refused_key_shows_why(network, client_as, partners, kind):
    text, says = REFUSED[kind]
    client = client_as("operator")
    keys_page = f"{BASE}/partners/{partners['CoffeeCo']}/keys"
    answer = post_form(client, keys_page, {"public_key": text}, page=keys_page)
    assert answer.status_code == 422 and 'data-code="validation_failed"' in answer.text and says in answer.text
    assert count(network, PartnerKey) == 0
