"""GET /v1/network/keys after `pointsnet keys rotate-signing`: the current key, as before, and the retired
ones, marked; answers are signed with the new key. A host not yet given the new key serves the same keys
(from the database every host shares) and signs with the key it has."""

from __future__ import annotations

import httpx

from shared.network import Network
from shared.signing import jwk, network_key_id
from tests.cli.inprocess import pointsnet
from tests.partner_api.conftest import Partner


def _rotate(network, database_url) -> dict:
    import json

    done = pointsnet("keys", "rotate-signing", env={"POINTSNET_DATA_DIR": str(network.settings.data_dir),
                                                    "POINTSNET_DATABASE_URL": database_url,
                                                    "POINTSNET_CLOCK": "2026-11-20T02:00:00Z"})
    assert done.returncode == 0, (done.stdout, done.stderr)
    return json.loads(done.stdout)


def test_the_keys_served_after_a_rotation(network, database_url, serve):
    old = network.signing_key
    network.checkpoint()
    rotated = _rotate(network, database_url)
    after = Network(network.settings, database_url=database_url, clock=network.clock)  # restarted
    try:
        api = serve(after)
        keys = httpx.get(api + "/v1/network/keys").json()["keys"]
        current = jwk(after.signing_key.public_key(), rotated["signing_key_id"])
        assert keys[0] == current  # the shape existing clients read, unchanged
        assert [k["kid"] for k in keys] == [rotated["signing_key_id"], network_key_id(old)]
        retired = keys[1]
        assert {k: retired[k] for k in current} == jwk(old.public_key(), network_key_id(old))
        assert retired["status"] == "retired" and retired["retired_at"] == "2026-11-20T02:00:00Z"
        assert all("d" not in k for k in keys)

        shop = Partner(after, api, "Coffee Shop")
        try:
            answer = shop.call("GET", "/v1/checkpoints/latest")  # checked against the keys served
            assert answer.status_code == 200
            assert shop.verify(answer).parameters["keyid"] == rotated["signing_key_id"]
        finally:
            shop.close()

        # a host still running with the old key: it signs with it, and serves the same keys
        stale = serve(network)
        served = httpx.get(stale + "/v1/network/keys").json()["keys"]
        assert [k["kid"] for k in served] == [network_key_id(old), rotated["signing_key_id"]]
        assert served[0]["status"] == "retired" and "status" not in served[1]
    finally:
        after.close()


def test_a_network_that_never_rotated_serves_one_key_as_before(network, serve):
    keys = httpx.get(serve(network) + "/v1/network/keys").json()["keys"]
    assert keys == [jwk(network.signing_key.public_key(), network_key_id(network.signing_key))]
