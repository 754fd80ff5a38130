"""A partner has at most two active keys, also when two are added at the same moment."""

from __future__ import annotations

import threading

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from shared.models import PartnerKey
from shared.partners.keys import MAX_ACTIVE_KEYS, TooManyKeys, add_key
from shared.signing import public_key_pem
from tests.factories import make_partner


def pem() -> str:
    return public_key_pem(Ed25519PrivateKey.generate().public_key()).decode()


def active_keys(network, partner) -> int:
    return network.tx(lambda tx: tx.session.execute(select(func.count()).select_from(PartnerKey).where(
        PartnerKey.partner_id == partner, PartnerKey.status == "active")).scalar_one(), readonly=True)


def test_two_keys_added_at_once_to_a_partner_with_one_leave_it_at_two(network):
    """The first addition holds its transaction open; the second, begun meanwhile, counts after it."""
    partner = make_partner(network)
    for _ in range(MAX_ACTIVE_KEYS - 1 - active_keys(network, partner)):
        network.tx(lambda tx: add_key(tx, partner, pem()))
    added, release, outcomes = threading.Event(), threading.Event(), {}

    def first(tx):
        outcomes["first"] = add_key(tx, partner, pem())
        added.set()
        release.wait(10)

    def second():
        try:
            outcomes["second"] = network.tx(lambda tx: add_key(tx, partner, pem()))
        except TooManyKeys as refused:
            outcomes["second"] = refused

    one = threading.Thread(target=lambda: network.tx(first), daemon=True)
    one.start()
    assert added.wait(10)
    two = threading.Thread(target=second, daemon=True)
    two.start()
    two.join(1.0)
    release.set()
    one.join(10)
    two.join(10)
    assert not one.is_alive() and not two.is_alive()
    assert isinstance(outcomes["second"], TooManyKeys) and active_keys(network, partner) == MAX_ACTIVE_KEYS
