"""A partner has at most two active keys, also when two are added at the same moment."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from shared.models import PartnerKey
from shared.partners.keys import MAX_ACTIVE_KEYS, TooManyKeys, add_key
from shared.signing import public_key_pem
from tests.factories import make_partner
from tests.interleave import Pause, overlap


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
    pause = Pause()

    def first(tx):
        added = add_key(tx, partner, pem())
        pause()
        return added

    both = overlap(lambda: network.tx(first), lambda: network.tx(lambda tx: add_key(tx, partner, pem())), pause)
    assert isinstance(both.second, TooManyKeys) and active_keys(network, partner) == MAX_ACTIVE_KEYS
