"""Personal data at rest: AES-GCM ciphertexts and keyed blind indexes, each tagged with its key id.

A ciphertext is bound to its member and field (associated data), so it cannot be
moved to another row. Phones are normalised to E.164 and emails to their
normalised form before indexing, so lookups match however a partner typed them.
"""

from __future__ import annotations

import base64
import re
import secrets
import unicodedata

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from email_validator import EmailNotValidError, validate_email

from shared.errors import InvalidContact
from shared.keys import PiiKey


class Keyring:
    def __init__(self, active: str, keys: dict[str, PiiKey]):
        self.active = keys[active]
        self.keys = keys

    def encrypt(self, field: str, member_id: str, plaintext: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self.active.encryption).encrypt(nonce, plaintext.encode(), f"{field}:{member_id}".encode())
        return f"v1.{self.active.id}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, field: str, member_id: str, token: str) -> str:
        version, key_id, payload = token.split(".", 2)
        if version != "v1":
            raise ValueError(f"unknown ciphertext version {version}")
        raw = base64.urlsafe_b64decode(payload)
        key = self.keys[key_id]
        return AESGCM(key.encryption).decrypt(raw[:12], raw[12:], f"{field}:{member_id}".encode()).decode()

    def _index(self, key: PiiKey, field: str, value: str) -> str:
        mac = hmac.HMAC(key.index, hashes.SHA256())
        mac.update(f"{field}:{value}".encode())
        return f"{key.id}:{mac.finalize().hex()}"

    def blind_index(self, field: str, value: str) -> str:
        """The index value written now (active key)."""
        return self._index(self.active, field, value)

    def index_under(self, key_id: str, field: str, value: str) -> str:
        """The index value under one key of the keyring (KeyError if it is not in it any more): what a
        value kept under an earlier active key is compared with."""
        return self._index(self.keys[key_id], field, value)

    def lookup_indexes(self, field: str, value: str) -> list[str]:
        """Every index value the same contact may be stored under (all keys, during a rotation)."""
        return [self._index(key, field, value) for key in self.keys.values()]


# What phonenumbers drops without a word, so that it never reaches the extension check: a second number
# after "/ x" or "\ x" (its "second number" rule: "+86 10 6552 9988 / x101" reads as the switchboard), and an
# RFC 3966 parameter other than phone-context (";isub=7", a sub-address; ";ext=103" after phone-context);
# semicolons around the text are no parameters (a spreadsheet's leftovers): the check reads what is between
_DROPPED_BY_THE_PARSER = re.compile(r"[\\/]\s*x|;(?!\s*phone-context\s*=)", re.IGNORECASE)
_NO_EXTENSION = ("a member's phone number is its own, without an extension (a switchboard's extensions would "
                 "all be one member)")


def normalise_phone(raw: str, default_region: str) -> str:
    # imported here, where a number is parsed: its metadata costs 16-25 ms, which every process that
    # imports this module (each network handle, `pointsnet verify`) would pay without ever parsing one
    import phonenumbers

    if _DROPPED_BY_THE_PARSER.search(raw.strip(" \t\r\n;")):
        raise InvalidContact(_NO_EXTENSION + "; nor a sub-address or a second number after '/ x'")
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        # the number is not repeated: a refusal is stored with the Idempotency-Key and shown on the
        # dashboard, and the partner has it in its own request
        raise InvalidContact(f"the phone number cannot be read: {exc}") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidContact("the phone number is not a valid number")
    if number.extension:  # E.164 has none: every extension of a switchboard would be one member
        raise InvalidContact(_NO_EXTENSION)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def normalise_email(raw: str) -> str:
    """The address as it is indexed: the domain in its folded (IDNA) form, all of it in lower case.

    A local part (before the ``@``) that compatibility normalisation (NFKC) would change is refused
    (``invalid_contact``), not folded: full-width ``ｌｉ.lei`` or the ligature ``ﬁ`` is most likely
    ``li.lei`` or ``fi`` typed with an input method, but a mail server need not read them so, and folding
    could merge two real mailboxes into one member. Refused, the person is never enrolled twice under
    two spellings of one address; the till corrects its input."""
    try:
        normalised = validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        # what the validator quotes (a domain label its IDNA check refused, the characters it found) is left
        # out: the address is not repeated, here as for a phone number
        raise InvalidContact(f"email address is not valid: {_QUOTED.sub('…', str(exc))}") from exc
    local = normalised.rpartition("@")[0]
    if unicodedata.normalize("NFKC", local) != local:
        # the address is not repeated: a refusal is stored with the Idempotency-Key
        raise InvalidContact("email address is not valid: its part before the @ has full-width or other "
                             "compatibility characters (full-width letters, ligatures); type it in plain characters")
    return normalised


def mask_phone(phone: str) -> str:
    """A phone number with most of its digits starred: its last digits, at most 4 and at most a third of
    them; a number in international form of 11 digits or more also keeps its ``+`` and first two digits
    (the country's code, or its start). ``+8613912345678`` is ``+86*******5678``; ``91234567`` is
    ``******67``."""
    digits = "".join(char for char in phone if char.isdigit())
    international = phone.strip().startswith("+") and len(digits) >= 11
    head = digits[:2] if international else ""
    tail = digits[len(digits) - min(4, len(digits) // 3):] if len(digits) >= 3 else ""
    return ("+" if international else "") + head + "*" * (len(digits) - len(head) - len(tail)) + tail \
        if tail else "***"


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"
