"""Request authentication for profile ``pointsnet-v1`` (RFC 9421, Ed25519).

The checks run in a fixed order so that each failure has its own stable code;
the cryptographic verification itself is ``http-message-signatures``'.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import http_sf
import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import (HTTPMessageVerifier, HTTPSignatureComponentResolver, InvalidSignature,
                                     MappingKeyResolver, algorithms)
from services.partner_api import errors
from shared.network import Network
from shared.partners.keys import ResolvedKey, remember_nonce, resolve_key
from shared.signing import (ALG, FRESHNESS_S, POST_COMPONENTS, REQUEST_COMPONENTS, REQUEST_TAG, WEAK_KEY,
                            load_public_key)
from shared.partners.lifecycle import PartnerTerminated, is_terminated

READS = ("GET", "HEAD")  # what a suspended partner may still do: nothing it sends changes the network
# What a terminated partner may still read: its statements. It still settles — under keep_paying it
# reimburses its points redeemed elsewhere, a buy-out is paid in its final cycle — and nothing else.
STATEMENTS = "/v1/statements"


@dataclass
class SignedRequest:
    """What the resolver of http-message-signatures needs: method, absolute URL, headers."""

    method: str
    url: str
    headers: httpx.Headers
    path: str = ""  # the path the application routes on (the ASGI scope's)


@dataclass(frozen=True)
class Authenticated:
    partner_id: str
    key_id: str
    label: str


def parse_dictionary(value: str | None) -> dict:
    if value is None:
        raise errors.SignatureMissing("Signature-Input and Signature headers are required")
    try:
        return http_sf.parse(value.encode(), tltype="dictionary")
    except Exception as exc:
        raise errors.SignatureMalformed(f"not a structured dictionary: {exc}") from exc


def request_label(headers: httpx.Headers) -> str | None:
    """The label of the request's pointsnet-v1 signature, if one can be read (for response binding)."""
    try:
        inputs = http_sf.parse(headers["signature-input"].encode(), tltype="dictionary")
        signatures = http_sf.parse(headers["signature"].encode(), tltype="dictionary")
    except Exception:
        return None
    labels = [label for label, (_, params) in inputs.items() if params.get("tag") == REQUEST_TAG]
    labels = labels or list(inputs)
    return next((label for label in labels if label in signatures), None)


def _covered(members) -> set[str]:
    if not isinstance(members, list):
        raise errors.SignatureMalformed("Signature-Input member must be an inner list")
    return {value for value, params in members if not params}


def authenticate(network: Network, request: SignedRequest, body: bytes, now: datetime) -> Authenticated:
    headers = request.headers
    if "signature-input" not in headers and "signature" not in headers:
        raise errors.SignatureMissing("sign the request (RFC 9421, profile pointsnet-v1)")
    inputs = parse_dictionary(headers.get("signature-input"))
    signatures = parse_dictionary(headers.get("signature"))
    tagged = [label for label, (_, params) in inputs.items() if params.get("tag") == REQUEST_TAG]
    if not tagged:
        raise errors.SignatureTagInvalid(f'no signature carries tag="{REQUEST_TAG}"')
    label = tagged[0]
    if label not in signatures:
        raise errors.SignatureMalformed(f"Signature has no member {label!r}")
    members, params = inputs[label]
    if params.get("alg") != ALG:
        raise errors.SignatureAlgInvalid(f'alg must be "{ALG}", not {params.get("alg")!r}')
    for name, kind in (("keyid", str), ("nonce", str), ("created", int)):
        if not isinstance(params.get(name), kind) or isinstance(params.get(name), bool):
            raise errors.SignatureMalformed(f"signature parameter {name} is missing or of the wrong type")
    if not 0 < len(params["nonce"]) <= 128:
        raise errors.SignatureMalformed("nonce must be 1 to 128 characters")
    required = set(REQUEST_COMPONENTS) | (set(POST_COMPONENTS) if request.method == "POST" else set())
    missing = sorted(required - _covered(members))
    if missing:
        raise errors.ComponentNotCovered(f"the signature must cover {', '.join(missing)}", missing=missing)
    # compared as Unix seconds: a timestamp out of datetime's range (year 1 to 9999) is just old or new
    now_s = now.timestamp()
    expires = params.get("expires")
    if expires is not None and (not isinstance(expires, int) or isinstance(expires, bool) or expires < now_s):
        raise errors.SignatureExpired("the signature's expires time has passed")
    if abs(now_s - params["created"]) > FRESHNESS_S:
        raise errors.SignatureExpired(f"created {params['created']} (Unix seconds) is more than {FRESHNESS_S} s from "
                                      f"the network's time {int(now_s)} ({now.replace(microsecond=0).isoformat()})")

    def door(tx) -> tuple[ResolvedKey, bool]:
        """Key, signature, digest and nonce in one transaction; (key, partner terminated)."""
        key = resolve_key(tx, params["keyid"])
        if key is None:
            raise errors.KeyUnknown(f"no key {params['keyid']!r}")
        if key.status != "active":
            raise errors.KeyRevoked(f"key {key.key_id} was revoked")
        _verify_signature(request, key, label)
        if request.method == "POST" or body:
            check_digest(headers.get("content-digest"), body)
        if not remember_nonce(tx, key.key_id, params["nonce"], now):
            raise errors.NonceReused("this nonce was already used with this key; sign every request afresh")
        return key, key.partner_status != "active" and is_terminated(tx, key.partner_id)

    # The nonce commits with the lookup; a suspended partner's refusal comes after, so its nonce stays spent.
    key, terminated = network.tx(door)
    if key.partner_status != "active":
        if terminated and not _statement_read(request):
            raise PartnerTerminated("the partner has left the network; it can still read its statements "
                                    "(GET /v1/statements)")
        if request.method not in READS:  # it still settles: statements, reports and lookups stay open
            raise errors.Forbidden("the partner is suspended: it can read (GET) but not write")
    return Authenticated(key.partner_id, key.key_id, label)


def _statement_read(request: SignedRequest) -> bool:
    """A read of the partner's statements: the list, a cycle's statement or its file."""
    return request.method in READS and (request.path == STATEMENTS or request.path.startswith(STATEMENTS + "/"))


@lru_cache(maxsize=4096)
def _stored_key(public: str) -> Ed25519PublicKey | None:
    """A stored key's material loaded and checked once per process (libsodium's check of the point costs
    about as much as verifying a signature); None for a weak key, registered before registration refused
    them: nothing signed with it is believed. Keyed by the material, which never changes its meaning."""
    try:
        return load_public_key(public)
    except ValueError:
        return None


def _verify_signature(request: SignedRequest, key: ResolvedKey, label: str) -> None:
    public = _stored_key(key.public_key)
    if public is None:
        raise errors.SignatureInvalid(f"key {key.key_id} is never believed: it is {WEAK_KEY}, register it and "
                                      f"revoke {key.key_id}")
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=MappingKeyResolver(
        public_keys={key.key_id: public}, private_keys={}))
    verifier.max_clock_skew = timedelta(seconds=FRESHNESS_S)
    try:
        verifier.verify(request, max_age=None, expect_tag=REQUEST_TAG, expect_label=label)
    except InvalidSignature as exc:
        read = network_read(request)
        raise errors.SignatureInvalid(
            f"signature {label!r} does not verify over the request as the network read it ("
            + ", ".join(f"{name} {value!r}" for name, value in read.items())
            + "): where your signature base has other values, a proxy or your client changed the request "
              "after signing; where it has these, the key or the base's other lines differ", network_read=read) from exc
    except Exception as exc:  # a covered component the message lacks, an unparsable field, ...
        raise errors.SignatureInvalid(f"signature {label!r} cannot be verified: {exc}") from exc


def network_read(request: SignedRequest) -> dict[str, str]:
    """The derived components of the profile as the network resolved them for a request whose signature did
    not verify: the lines of a partner's signature base that a proxy or a client library most often changes
    (a Host rewritten, a path prefix, a re-encoded query). Nothing in them is not the request's own."""
    resolver = HTTPSignatureComponentResolver(request)
    return {"@method": resolver.get_method(), "@authority": resolver.get_authority(),
            "@path": resolver.get_path(), "@query": resolver.get_query()}


def check_digest(header: str | None, body: bytes) -> None:
    if header is None:
        raise errors.DigestMismatch("Content-Digest header missing")
    try:
        digests = http_sf.parse(header.encode(), tltype="dictionary")
    except Exception as exc:
        raise errors.DigestMismatch(f"Content-Digest is malformed: {exc}") from exc
    member = digests.get("sha-256")
    if member is None or not isinstance(member[0], bytes):
        raise errors.DigestMismatch("Content-Digest must carry sha-256")
    if member[0] != hashlib.sha256(body).digest():
        raise errors.DigestMismatch("Content-Digest sha-256 does not match the body received: "
                                    + base64.b64encode(hashlib.sha256(body).digest()).decode())
