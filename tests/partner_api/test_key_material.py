"""A partner key's material is registered once. Keys "can be revoked" (ARCHITECTURE, request
signatures) and docs/operations.md `keys revoke`: "requests signed with it are refused from now on" —
so a revoked key's public key is refused if it is offered again (else the private key that was revoked,
typically because it leaked, signs again under a fresh keyid), and a key already registered (to this
partner or another) is refused too: one key is never active twice."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from shared.errors import PointsnetError
from shared.models import PartnerKey
from shared.partners.keys import KeyAlreadyRegistered, RevokedKeyRefused, add_key, revoke_key
from shared.signing import b64url, raw_public
from tests.factories import make_partner
from tests.interleave import Pause, overlap
from tests.partner_api.conftest import assert_problem, pem


def key_count(network) -> int:
    return network.tx(lambda tx: tx.session.execute(select(func.count()).select_from(PartnerKey)).scalar_one(),
                      readonly=True)


def test_a_revoked_key_can_never_sign_again(network, shop):
    leaked = shop.keys[shop.key_id]
    assert shop.ok("GET", "/v1/transactions") is not None
    network.tx(lambda tx: revoke_key(tx, shop.key_id))
    assert_problem(shop.call("GET", "/v1/transactions"), 401, "key_revoked")  # at once
    before = key_count(network)
    with pytest.raises(PointsnetError) as refused:  # the same key material is not accepted again ...
        again = shop.add_key(leaked)
        # ... else the leaked private key signs again
        answer = shop.call("GET", "/v1/transactions", key_id=again)
        raise AssertionError(f"the revoked key signs again under {again}: {answer.status_code}")
    assert isinstance(refused.value, RevokedKeyRefused) and refused.value.code == "key_previously_revoked"
    assert refused.value.status == 409 and shop.key_id in refused.value.detail
    assert key_count(network) == before


def test_a_revoked_key_is_refused_for_another_partner_too(network):
    key = Ed25519PrivateKey.generate()
    first, second = make_partner(network), make_partner(network)
    key_id = network.tx(lambda tx: add_key(tx, first, pem(key)))["key_id"]
    network.tx(lambda tx: revoke_key(tx, key_id))
    with pytest.raises(RevokedKeyRefused):
        network.tx(lambda tx: add_key(tx, second, pem(key)))


@pytest.mark.parametrize("same_partner", [True, False])
def test_a_key_is_never_active_twice(network, same_partner):
    key = Ed25519PrivateKey.generate()
    first = make_partner(network)
    second = first if same_partner else make_partner(network)
    key_id = network.tx(lambda tx: add_key(tx, first, pem(key)))["key_id"]
    before = key_count(network)
    with pytest.raises(KeyAlreadyRegistered) as refused:
        network.tx(lambda tx: add_key(tx, second, pem(key)))
    assert refused.value.code == "key_already_registered" and refused.value.status == 409
    assert key_id in refused.value.detail
    assert key_count(network) == before


def test_the_same_key_in_another_encoding_is_the_same_key(network):
    """The raw 32 bytes, base64url, are what is compared: a PEM and its raw form are one key."""
    key = Ed25519PrivateKey.generate()
    partner = make_partner(network)
    network.tx(lambda tx: add_key(tx, partner, pem(key)))
    with pytest.raises(KeyAlreadyRegistered):
        network.tx(lambda tx: add_key(tx, partner, b64url(raw_public(key.public_key()))))
    with pytest.raises(KeyAlreadyRegistered):
        network.tx(lambda tx: add_key(tx, partner, pem(key).replace("\n", "\r\n")))


def test_one_key_added_to_two_partners_at_once_is_registered_once(network):
    """The first addition holds its transaction open; the second, begun meanwhile, sees it."""
    key = Ed25519PrivateKey.generate()
    first, second = make_partner(network), make_partner(network)
    pause = Pause()

    def one(tx):
        added = add_key(tx, first, pem(key))
        pause()
        return added

    both = overlap(lambda: network.tx(one), lambda: network.tx(lambda tx: add_key(tx, second, pem(key))), pause)
    assert isinstance(both.first, dict), both.first
    assert isinstance(both.second, KeyAlreadyRegistered), both.second
    raw = b64url(raw_public(key.public_key()))
    assert network.tx(lambda tx: tx.session.execute(select(func.count()).select_from(PartnerKey).where(
        PartnerKey.public_key == raw)).scalar_one(), readonly=True) == 1
