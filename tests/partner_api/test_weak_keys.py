"""A weak Ed25519 public key is never believed. A small-order point (the identity, or any of the eight
points of order 1, 2, 4 or 8) verifies the signature R = that point, s = 0 for every message, and
OpenSSL does not refuse one when it verifies: registered as a partner's key, it would let anyone who
knows its keyid (not a secret) sign as that partner. Found by review. Such a key, one outside the main
subgroup, and a non-canonical encoding are refused when a key is registered (raw, base64url or PEM),
at the door for one stored before that check (401 ``signature_invalid``), and by the SDK among the
network's keys. A PEM key on a curve ``cryptography`` does not know is a ValidationFailed too, not
UnsupportedAlgorithm."""

from __future__ import annotations

import base64

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import algorithms
from nacl.bindings import crypto_core_ed25519_add
from sqlalchemy import func, insert, select

from shared.errors import ValidationFailed
from shared.models import PartnerKey
from shared.partners.keys import add_key
from shared.sdk import PointsnetClient, ResponseSignatureError
from shared.signing import b64url, jwk, load_public_key, raw_public
from tests.factories import make_partner
from tests.partner_api.conftest import assert_problem

IDENTITY = bytes([1]) + bytes(31)
ORDER_8 = bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
SMALL_ORDER = {
    "identity": IDENTITY,
    "order 2": bytes.fromhex("ec" + "ff" * 30 + "7f"),
    "order 4": bytes(32),
    "order 8": ORDER_8,
}
# a secp112r1 public key (openssl ecparam -name secp112r1): a curve cryptography does not support
SECP112R1_PEM = """-----BEGIN PUBLIC KEY-----
MDIwEAYHKoZIzj0CAQYFK4EEAAYDHgAEAKe0uD/ly5xtj03WOW+cNTClQ/ZW7MO+
AeY82w==
-----END PUBLIC KEY-----
"""


def spki_pem(raw: bytes) -> str:
    """An Ed25519 SubjectPublicKeyInfo PEM of any 32 bytes (the fixed 12-byte DER prefix + the key)."""
    der = bytes.fromhex("302a300506032b6570032100") + raw
    return "-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(der).decode() + "\n-----END PUBLIC KEY-----\n"


def weak_keys() -> dict[str, bytes]:
    good = raw_public(Ed25519PrivateKey.generate().public_key())
    return SMALL_ORDER | {
        "outside the main subgroup": crypto_core_ed25519_add(good, ORDER_8),  # a good key plus an order-8 point
        "non-canonical": bytes.fromhex("ed" + "ff" * 30 + "7f"),  # y = p: not reduced
    }


class Forged(algorithms.ED25519):
    """Signs every message without any private key: R = identity, s = 0."""

    def sign(self, message):
        return IDENTITY + bytes(32)


def key_count(network) -> int:
    return network.tx(lambda tx: tx.session.scalar(select(func.count()).select_from(PartnerKey)), readonly=True)


def test_a_weak_public_key_is_refused_when_registered(network):
    partner = make_partner(network)
    for name, raw in weak_keys().items():
        for text in (base64.b64encode(raw).decode(), b64url(raw), spki_pem(raw)):
            with pytest.raises(ValidationFailed) as refused:
                network.tx(lambda tx: add_key(tx, partner, text))
            assert refused.value.code == "validation_failed" and refused.value.status == 422, name
            assert "weak Ed25519 public key" in refused.value.detail, (name, refused.value.detail)
    assert key_count(network) == 0


def test_a_good_key_in_every_encoding_still_loads():
    key = Ed25519PrivateKey.generate().public_key()
    raw = raw_public(key)
    for text in (base64.b64encode(raw).decode(), b64url(raw), spki_pem(raw)):
        assert raw_public(load_public_key(text)) == raw


def test_a_pem_key_on_an_unsupported_curve_is_a_validation_error(network):
    partner = make_partner(network)
    with pytest.raises(ValidationFailed) as refused:
        network.tx(lambda tx: add_key(tx, partner, SECP112R1_PEM))
    assert "not an Ed25519 public key" in refused.value.detail
    assert key_count(network) == 0


def test_a_weak_key_stored_before_the_check_signs_nothing(network, shop):
    """The reviewer's repro, with the key written as a release without the check would have: refused at
    the door as a bad key (401 signature_invalid), however its signature was made."""
    key_id = "key_weak_stored"
    network.tx(lambda tx: tx.session.execute(insert(PartnerKey.__table__).values(
        key_id=key_id, partner_id=shop.partner_id, public_key=b64url(IDENTITY), status="active", created_at=tx.now)))
    shop.keys[key_id] = Ed25519PrivateKey.generate()  # ignored by Forged
    answer = shop.send(shop.build("GET", "/v1/transactions", key_id=key_id, algorithm=Forged), verify=False)
    body = assert_problem(answer, 401, "signature_invalid")
    assert "weak" in body["detail"], body
    assert shop.ok("GET", "/v1/transactions") is not None  # the partner's good key still signs


def test_the_sdk_refuses_a_weak_network_key(network):
    """An answer 'signed' by a small-order key the keys endpoint serves is not believed: the keys
    cannot be read, so nothing is."""
    import time

    def impostor(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/network/keys":
            return httpx.Response(200, json={"keys": [jwk(load_public_key_unchecked(IDENTITY), "network-weak")]})
        return httpx.Response(200, json={"transaction_id": "ent_forged"}, headers={
            "signature-input": f'pointsnet=("@status");created={int(time.time())};keyid="network-weak";'
                               f'alg="ed25519";tag="pointsnet-v1-response"',
            "signature": f"pointsnet=:{base64.b64encode(IDENTITY + bytes(32)).decode()}:"})

    sdk = PointsnetClient("https://points.example.com", "key_x", Ed25519PrivateKey.generate(),
                          transport=httpx.MockTransport(impostor))
    try:
        with pytest.raises(ResponseSignatureError, match="weak Ed25519 public key"):
            sdk.fetch_network_keys()
        with pytest.raises(ResponseSignatureError):
            sdk.call("GET", "/v1/transactions")
    finally:
        sdk.close()


def load_public_key_unchecked(raw: bytes):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(raw)
