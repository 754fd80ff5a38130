"""Ed25519 keys and RFC 9421 signatures for the partner API profile ``pointsnet-v1``.

All cryptography is done by ``cryptography`` and ``http-message-signatures`` (and the check of a public
key's point by libsodium, through PyNaCl); this module only names the profile: which components, which
parameters, which tags.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from typing import Any

import http_sf
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms
from nacl.bindings import crypto_core_ed25519_is_valid_point

REQUEST_TAG = "pointsnet-v1"
RESPONSE_TAG = "pointsnet-v1-response"
ALG = "ed25519"
REQUEST_COMPONENTS = ("@method", "@authority", "@path", "@query")
POST_COMPONENTS = ("content-digest", "idempotency-key")
FRESHNESS_S = 300
# How long after its retirement a network key is still believed for what it signed: the hosts not restarted
# since the rotation (or not given the new key file yet) sign with it. ``pointsnet verify`` names a
# checkpoint note it signed later; the SDK refuses an answer or a note it signed later: after a rotation for
# a leak, the leaked key is no longer believed once this has passed.
RETIRED_KEY_ROLLOUT = timedelta(hours=24)


def response_components(request_label: str) -> tuple[str, ...]:
    return ("@status", "content-digest", '"@method";req', '"@path";req', '"@query";req',
            f'"signature";req;key="{request_label}"')


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_fingerprint(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public(key)).hexdigest()[:16]


def network_key_id(key: Ed25519PrivateKey) -> str:
    return f"network-{key_fingerprint(key.public_key())}"


WEAK_KEY = ("a weak Ed25519 public key (a point of small order, outside the main subgroup, or not canonically "
            "encoded): anyone could sign as its holder; make a new key pair")


def strong_public_key(raw: bytes) -> Ed25519PublicKey:
    """The Ed25519 public key of these 32 bytes, if libsodium finds them a canonical point of the main subgroup
    and not of small order. A small-order point (the identity among them) verifies the signature R = that
    point, s = 0 for every message, and OpenSSL does not refuse one when it verifies: ValueError(WEAK_KEY)."""
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key has 32 bytes")
    if not crypto_core_ed25519_is_valid_point(raw):
        raise ValueError(WEAK_KEY)
    return Ed25519PublicKey.from_public_bytes(raw)


def load_public_key(text: str | bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM, or from the base64/base64url of its 32 raw bytes; ValueError for
    anything else, and for a weak key (``strong_public_key``)."""
    data = text.encode() if isinstance(text, str) else text
    if b"-----BEGIN" in data:
        try:
            key = serialization.load_pem_public_key(data)
        except UnsupportedAlgorithm as exc:  # a curve or key type cryptography does not know (secp112r1, ...)
            raise ValueError("the PEM key is not an Ed25519 public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the PEM key is not an Ed25519 public key")
        return strong_public_key(raw_public(key))
    cleaned = data.strip()
    raw = base64.urlsafe_b64decode(cleaned.replace(b"+", b"-").replace(b"/", b"_") + b"=" * (-len(cleaned) % 4))
    return strong_public_key(raw)


def jwk(key: Ed25519PublicKey, key_id: str) -> dict[str, Any]:
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw_public(key)), "kid": key_id, "alg": ALG,
            "use": "sig"}


def public_key_from_jwk(value: dict[str, Any]) -> Ed25519PublicKey:
    """The key of a JWK's ``x``; ValueError for a weak key (``strong_public_key``): a network key too."""
    return strong_public_key(base64.urlsafe_b64decode(value["x"] + "=" * (-len(value["x"]) % 4)))


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(data: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def signer(key_id: str, key: Ed25519PrivateKey) -> HTTPMessageSigner:
    resolver = MappingKeyResolver(public_keys={key_id: key.public_key()}, private_keys={key_id: key})
    return HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=resolver)


def signature_fields(signer_: HTTPMessageSigner, message, *, key_id: str, label: str,
                     **options: Any) -> tuple[tuple[str, str], tuple[str, str]]:
    """The ``Signature-Input`` and ``Signature`` fields of ``message`` signed under ``label``, for a
    message the caller builds itself and sends right away (the API's answers).

    The library's ``sign()`` is ``prepare()`` + the algorithm's ``sign()`` + ``apply()``; ``apply()``
    parses the prepared parameters again and rebuilds the whole signature base to catch a message that
    changed while an external signer worked, then writes the two fields. Here nothing runs between the
    two, so the fields are serialized from the prepared input directly, by the Structured Fields
    library the signing library uses, and the base is built once instead of twice (about half the
    cost of signing an answer: docs/benchmarks.md, "2026-12-06 (morning)"). Answers signed this way
    are verified in the tests by the library's own verifier."""
    prepared = signer_.prepare(message, key_id=key_id, label=label, **options)
    key = signer_.key_resolver.resolve_private_key(key_id)
    signature = signer_.signature_algorithm(private_key=key).sign(prepared.signature_base)
    return (("signature-input", f"{prepared.label}={prepared.signature_params}"),
            ("signature", http_sf.ser({prepared.label: signature})))
