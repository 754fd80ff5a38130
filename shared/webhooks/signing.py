"""Standard Webhooks signatures: ``v1`` (HMAC-SHA256, per-partner secret) and ``v1a`` (Ed25519, network key).

Pure functions over bytes and strings; both schemes sign ``{webhook-id}.{webhook-timestamp}.{body}``.
``webhook-key-id`` names the network key of the ``v1a`` (the kid of its JWK at ``GET /v1/network/keys``, as
API answers name it): no signature covers it, it only tells the partner which published key to check
with, so a partner verifies across a rotation of the network's key without pinning one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.signing import network_key_id

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh HMAC secret in the Standard Webhooks form: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_bytes(secret: str) -> bytes:
    body = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    return base64.b64decode(body)


def signed_content(message_id: str, timestamp: int, body: str) -> bytes:
    return f"{message_id}.{timestamp}.{body}".encode()


def sign_v1(secret: str, message_id: str, timestamp: int, body: str) -> str:
    digest = hmac.new(secret_bytes(secret), signed_content(message_id, timestamp, body), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign_v1a(key: Ed25519PrivateKey, message_id: str, timestamp: int, body: str) -> str:
    return "v1a," + base64.b64encode(key.sign(signed_content(message_id, timestamp, body))).decode()


def webhook_headers(message_id: str, timestamp: int, body: str, secrets_in_force: list[str],
                    key: Ed25519PrivateKey) -> dict[str, str]:
    """The three Standard Webhooks headers, one ``v1`` per secret in force, then the ``v1a``; and the id of
    the key of the ``v1a``."""
    signatures = [sign_v1(secret, message_id, timestamp, body) for secret in secrets_in_force]
    signatures.append(sign_v1a(key, message_id, timestamp, body))
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
        "webhook-key-id": network_key_id(key),
        "content-type": "application/json",
    }
