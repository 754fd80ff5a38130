"""What a stolen database gives away: the SQLite files (with the WAL) or a ``pg_dump`` of a network
with members hold none of their phones, emails or names in plain text, before and after a key
rotation; after an erasure, nothing in the dump decrypts to the member's data with the current keys."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from shared.keys import activate_pii_key, add_pii_key
from shared.models import Member
from tests.conftest import PG_URL
from tests.factories import verify_ok
from tests.partner_api.conftest import api, partners, serve, shop  # noqa: F401  (fixtures)
from tests.members.test_privacy import PEOPLE, assert_no_plaintext, enrol_people, lookup, sqlite_files

TOKEN = re.compile(rb"v1\.(k[0-9a-f]{8})\.([A-Za-z0-9_\-]+=*)")


def dump(network, database_url: str) -> bytes:
    """The database as a thief would take it: its files as they are, or pg_dump of it."""
    if database_url.startswith("sqlite"):
        return b"".join(p.read_bytes() for p in sqlite_files(database_url))
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    url = make_url(database_url)
    return subprocess.run(["pg_dump", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
                           "-U", url.username or "postgres", url.database],
                          check=True, capture_output=True, timeout=120).stdout


def _database_url(database_url: str) -> str:
    return PG_URL if PG_URL else database_url


def test_a_dump_holds_no_personal_data_before_and_after_a_key_rotation(network, settings, database_url):
    url = _database_url(database_url)
    partner, members = enrol_people(network)
    before = dump(network, url)
    assert b"v1." in before, "the dump should hold the ciphertexts"
    assert_no_plaintext(before)
    old_key = network.keyring.active.id

    new_key = add_pii_key(settings)
    activate_pii_key(settings, new_key)
    assert network.keyring.active.id == new_key  # the running network picks the key file change up
    assert network.rotate_personal_data(batch_size=2) == len(PEOPLE)
    after = dump(network, url)
    assert_no_plaintext(after)
    rows = network.tx(lambda tx: tx.session.execute(select(Member)).scalars().all(), readonly=True)
    for row in rows:
        assert row.phone_ct.startswith(f"v1.{new_key}.") and row.phone_bidx.startswith(f"{new_key}:")
        assert row.email_ct.startswith(f"v1.{new_key}.") and row.email_bidx.startswith(f"{new_key}:")
        assert row.name_ct.startswith(f"v1.{new_key}.")
    if not url.startswith("sqlite"):  # (SQLite's WAL may still hold old page images until a checkpoint)
        assert f"v1.{old_key}.".encode() not in after and f"{old_key}:".encode() not in after
    for phone, _, email, _ in PEOPLE:
        assert lookup(network, phone=phone) is not None and lookup(network, email=email) is not None
    verify_ok(network)


def test_after_erasure_nothing_in_a_dump_decrypts_to_the_member(network, settings, database_url):
    url = _database_url(database_url)
    partner, members = enrol_people(network)
    erased = members[0]
    network.earn(partner, erased, "e1", points=50)
    activate_pii_key(settings, add_pii_key(settings))
    network.rotate_personal_data(batch_size=10)
    network.erase_member(erased, reason="request 1")
    network.db.dispose()  # connections closed: SQLite checkpoints what is left of its WAL

    raw = dump(network, url)
    assert_no_plaintext(raw)
    keyring = network.keyring
    phone, _, email, name = PEOPLE[0]
    tokens = TOKEN.findall(raw)
    assert tokens, "the other members' ciphertexts should still be there"
    for key_id, payload in tokens:
        token = f"v1.{key_id.decode()}.{payload.decode()}"
        for field in ("phone", "email", "name"):
            try:
                plain = keyring.decrypt(field, erased, token)
            except Exception:
                continue
            pytest.fail(f"a {field} ciphertext of the erased member decrypts: {plain!r}")
    # the member's blind-index values under every current key are gone too
    for field, value in (("phone", phone), ("email", email.lower())):
        for index in keyring.lookup_indexes(field, value):
            assert index.encode() not in raw
    assert lookup(network, phone=phone) is None
    # the other members are still there and readable
    assert lookup(network, phone=PEOPLE[1][0]) == members[1]
    verify_ok(network)


def test_enrolments_through_the_api_leave_no_contact_in_the_dump(network, database_url, shop):
    """An idempotency record keeps the request it answered: for enrolments, contact only as a keyed hash."""
    for phone, _, email, name in PEOPLE:
        shop.ok("POST", "/v1/members", {"phone": phone, "email": email, "name": name})
    replay = shop.call("POST", "/v1/members", {"phone": PEOPLE[0][0], "email": PEOPLE[0][2], "name": PEOPLE[0][3]},
                       idempotency_key="same-key")
    again = shop.call("POST", "/v1/members", {"phone": PEOPLE[0][0], "email": PEOPLE[0][2], "name": PEOPLE[0][3]},
                      idempotency_key="same-key")
    assert replay.status_code == 200 and again.headers.get("idempotent-replayed") == "true"
    assert_no_plaintext(dump(network, _database_url(database_url)))
