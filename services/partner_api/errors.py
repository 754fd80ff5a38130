"""Refusals at the API's door: authentication, idempotency headers, limits.

PointsnetError
 ├── Unauthenticated (401)
 │    ├── SignatureMissing          signature_missing
 │    ├── SignatureMalformed        signature_malformed
 │    ├── SignatureTagInvalid       signature_tag_invalid
 │    ├── SignatureAlgInvalid       signature_alg_invalid
 │    ├── ComponentNotCovered       signature_component_missing
 │    ├── SignatureExpired          signature_expired
 │    ├── KeyUnknown                key_unknown
 │    ├── KeyRevoked                key_revoked
 │    ├── SignatureInvalid          signature_invalid
 │    ├── DigestMismatch            digest_mismatch
 │    └── NonceReused               nonce_reused
 ├── IdempotencyKeyMissing (400)    idempotency_key_missing
 ├── IdempotencyKeyInvalid (400)    idempotency_key_invalid
 ├── MalformedRequest (400)         malformed_request
 ├── BodyTooLarge (413)             body_too_large
 ├── RateLimited (429)              rate_limited
 └── Forbidden (403)                partner_suspended
"""

from shared.errors import PointsnetError


class Unauthenticated(PointsnetError):
    status, code, title = 401, "unauthenticated", "Request signature not accepted"


class SignatureMissing(Unauthenticated):
    code, title = "signature_missing", "The request is not signed"


class SignatureMalformed(Unauthenticated):
    code, title = "signature_malformed", "The request signature cannot be read"


class SignatureTagInvalid(Unauthenticated):
    code, title = "signature_tag_invalid", "No signature with tag pointsnet-v1"


class SignatureAlgInvalid(Unauthenticated):
    code, title = "signature_alg_invalid", "The signature algorithm must be ed25519"


class ComponentNotCovered(Unauthenticated):
    code, title = "signature_component_missing", "A required component is not covered by the signature"


class SignatureExpired(Unauthenticated):
    code, title = "signature_expired", "The signature's created time is outside the accepted window"


class KeyUnknown(Unauthenticated):
    code, title = "key_unknown", "Unknown key id"


class KeyRevoked(Unauthenticated):
    code, title = "key_revoked", "The key has been revoked"


class SignatureInvalid(Unauthenticated):
    code, title = "signature_invalid", "The signature does not verify"


class DigestMismatch(Unauthenticated):
    code, title = "digest_mismatch", "Content-Digest does not match the body"


class NonceReused(Unauthenticated):
    code, title = "nonce_reused", "This signature nonce was already used"


class IdempotencyKeyMissing(PointsnetError):
    status, code, title = 400, "idempotency_key_missing", "Idempotency-Key header required on POST"


class IdempotencyKeyInvalid(PointsnetError):
    status, code, title = 400, "idempotency_key_invalid", "Idempotency-Key must be 1 to 255 visible ASCII characters"


class MalformedRequest(PointsnetError):
    status, code, title = 400, "malformed_request", "The request body cannot be read"


class BodyTooLarge(PointsnetError):
    status, code, title = 413, "body_too_large", "Request body too large"


class RateLimited(PointsnetError):
    status, code, title = 429, "rate_limited", "Too many requests"


class Forbidden(PointsnetError):
    status, code, title = 403, "partner_suspended", "Partner is suspended"
