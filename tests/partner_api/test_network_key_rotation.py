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


def test_keys_are_served_from_this_host_when_the_database_is_down(network, serve, monkeypatch, caplog):
    """Found by review: since rotations are recorded in the database, /v1/network/keys read it on every call
    and answered a plain-text 500 when it was down (before: 200 with the host's key). The SDK fetches the keys
    when it starts: every client starting meanwhile failed. Now the host's own key is served, with a warning
    logged once."""
    import logging

    from sqlalchemy.exc import OperationalError

    api = serve(network)
    own = jwk(network.signing_key.public_key(), network_key_id(network.signing_key))  # loaded as the host started

    def down(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(network.db, "run_in_transaction", down)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            answer = httpx.get(api + "/v1/network/keys")
            assert answer.status_code == 200, answer.text
            assert answer.json()["keys"] == [own]
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING and "network/keys" in r.getMessage()]
    assert len(warned) == 1, [r.getMessage() for r in caplog.records]
    assert "connection refused" not in warned[0].getMessage()  # by class, never the driver's text


def test_the_keys_a_host_served_are_kept_a_short_while(network, database_url, serve, monkeypatch):
    """The keys recorded are read from the database at most once per KEYS_CACHE_S per process; the keys
    a rotation records are served by every host within that."""
    from services.partner_api import routes

    api = serve(network)
    now = [1000.0]
    monkeypatch.setattr(routes.time, "monotonic", lambda: now[0])
    before = httpx.get(api + "/v1/network/keys").json()["keys"]
    rotated = _rotate(network, database_url)
    assert httpx.get(api + "/v1/network/keys").json()["keys"] == before
    now[0] += routes.KEYS_CACHE_S
    served = httpx.get(api + "/v1/network/keys").json()["keys"]
    assert [k["kid"] for k in served] == [network_key_id(network.signing_key), rotated["signing_key_id"]]
