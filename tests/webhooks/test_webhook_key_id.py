"""Every delivery names the network key of its ``v1a`` signature (``webhook-key-id``, the kid of the JWK
at GET /v1/network/keys): a partner picks the key by it from the published keys, never pins one, so the
``v1a`` keeps verifying across a rotation of the network's signing key, and through the rollout when
hosts with the old key and hosts with the new one both deliver. Found by review: v1a named no key and
the guide told partners to pin the JWK's x."""

from __future__ import annotations

import base64
import json

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.partner_api.app import create_app
from shared.network import Network
from shared.signing import network_key_id
from shared.webhooks.delivery import deliver_due
from tests.cli.inprocess import pointsnet
from tests.factories import make_member, make_partner
from tests.partner_api.conftest import Server
from tests.webhooks.conftest import register, verify_v1a


def published(network: Network) -> dict[str, Ed25519PublicKey]:
    with Server(create_app(network)) as api:
        keys = httpx.get(api + "/v1/network/keys").json()["keys"]
    return {k["kid"]: Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(k["x"] + "==")) for k in keys}


def test_a_delivery_names_its_v1a_key_and_verifies_under_that_published_key(network, database_url, receiver):
    shop = make_partner(network, "Coffee")
    register(network, receiver, shop)
    member = make_member(network, shop)
    old_id = network_key_id(network.signing_key)
    network.earn(shop, member, "till-1", points=5)
    assert deliver_due(network)["delivered"] == 1

    done = pointsnet("keys", "rotate-signing", env={"POINTSNET_DATA_DIR": str(network.settings.data_dir),
                                                    "POINTSNET_DATABASE_URL": database_url})
    assert done.returncode == 0, done.stderr
    new_id = json.loads(done.stdout)["signing_key_id"]
    after = Network(network.settings, database_url=database_url, clock=network.clock)  # restarted: the new key
    try:
        network.earn(shop, member, "till-2", points=5)
        assert deliver_due(after)["delivered"] == 1
        keys = published(after)
    finally:
        after.close()

    first, second = receiver.at(f"/hooks/{shop}")
    assert [r["headers"]["webhook-key-id"] for r in (first, second)] == [old_id, new_id]
    assert set(keys) == {old_id, new_id}
    for request in (first, second):  # as the guide says: the key the delivery names, from the published keys
        verify_v1a(keys[request["headers"]["webhook-key-id"]], request)
