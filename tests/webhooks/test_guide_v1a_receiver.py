"""The partner guide's ``v1a`` receiver, run as written, against the keys the network publishes.

Its sample took any published key, retired ones included, with no time limit: whoever held a key the
network had rotated away (keys are rotated because they may have leaked) could sign deliveries a
receiver following the guide believed, for ever. It now refuses a ``v1a`` signed by a retired key with
a ``webhook-timestamp`` more than 24 hours after the key's ``retired_at``, as the SDK refuses answers.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.partner_api.app import create_app
from shared.signing import network_key_id
from shared.signing_keys import public_key_id, record_rotation
from shared.webhooks.signing import sign_v1a
from tests.partner_api.conftest import Server

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "partner-integration.md"


def guide_receiver() -> str:
    """The guide's ``v1a`` sample: the Python block that defines ``fetch_keys``."""
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    [sample] = [block for block in blocks if "def fetch_keys" in block]
    return "\n".join(line[2:] if line.startswith("  ") else line for line in sample.splitlines())


def receive(api: str, key: Ed25519PrivateKey, kid: str, timestamp: int, body: str = '{"type":"points.earned"}'):
    """Run the guide's receiver on one delivery signed by ``key``, the network's keys fetched from ``api``."""
    headers = {"webhook-id": "msg_guide", "webhook-timestamp": str(timestamp), "webhook-key-id": kid,
               "webhook-signature": sign_v1a(key, "msg_guide", timestamp, body)}
    real_get = httpx.get

    def get(url, *args, **kwargs):
        assert url == "https://points.example.com/v1/network/keys", url
        return real_get(api + "/v1/network/keys")

    namespace = {"headers": headers, "raw_body": body.encode()}
    httpx.get = get
    try:
        exec(compile(guide_receiver(), str(GUIDE), "exec"), namespace)
    finally:
        httpx.get = real_get


def test_the_guides_receiver_takes_the_current_key_and_a_retired_one_only_through_its_rollout(network, clock):
    old = network.signing_key
    network.checkpoint()
    new = Ed25519PrivateKey.generate()
    retired_at = clock.now()
    network.tx(lambda tx: record_rotation(tx, old.public_key(), new.public_key()))
    with Server(create_app(network)) as api:
        now = int(clock.now().timestamp())
        receive(api, new, public_key_id(new.public_key()), now)  # the new key, once published
        receive(api, old, network_key_id(old), now)  # the old one during the rollout
        last = int((retired_at + timedelta(hours=24)).timestamp())
        receive(api, old, network_key_id(old), last)
        with pytest.raises(ValueError, match="retired network key after its rollout"):
            receive(api, old, network_key_id(old), last + 1)  # a leaked old key, a day after the rotation
        with pytest.raises(InvalidSignature):
            receive(api, Ed25519PrivateKey.generate(), network_key_id(old), now)
        with pytest.raises(KeyError):
            receive(api, Ed25519PrivateKey.generate(), "network-0000000000000000", now)
