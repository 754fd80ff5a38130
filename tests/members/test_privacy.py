"""Members' personal data: never in plain text at rest, found through a keyed blind index,
linked to another partner only with the member's consent (single-use, short-lived token)."""

from __future__ import annotations

import hashlib
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shared import errors
from shared.members.enrolment import find_member
from shared.models import LinkToken, Member, MemberLink
from shared.network import Network
from tests.conftest import PG_URL
from tests.factories import make_partner

PEOPLE = [
    # (E.164 phone, national digits, email, name)
    ("+8613812345678", "13812345678", "li.lei@example.com", "Li Lei"),
    ("+8613900001111", "13900001111", "Han.Meimei@Example.org", "Han Meimei"),
    ("+8615011112222", "15011112222", "wang_fang+loyalty@example.net", "Wang Fang"),
]


def phone_forms(e164: str, national: str) -> list[str]:
    """Every way the phone could leak: E.164, without +, national, 0086, grouped with spaces/dashes."""
    groups = (national[:3], national[3:7], national[7:])
    return [
        e164, e164[1:], national, "0086" + national, "+86 " + " ".join(groups), " ".join(groups),
        "-".join(groups), "+86-" + "-".join(groups), f"({groups[0]}) {groups[1]}-{groups[2]}",
        national[3:],  # the last 8 digits alone
    ]


def lookup(network, **contact):
    keyring = network.keyring
    return network.tx(lambda tx: find_member(tx, keyring, **contact), readonly=True)


def enrol_people(network):
    partner = make_partner(network, "Enroller")
    members = []
    for phone, _, email, name in PEOPLE:
        members.append(network.enrol(partner, phone=phone, email=email, name=name, customer_ref="C-1" + phone[-3:])
                       ["member_id"])
    return partner, members


def assert_no_plaintext(raw: bytes) -> None:
    assert raw, "no bytes to search"
    lowered = raw.lower()
    for phone, national, email, name in PEOPLE:
        for form in phone_forms(phone, national):
            for encoding in ("ascii", "utf-16-le", "utf-16-be"):
                assert form.encode(encoding) not in raw, f"phone {form!r} ({encoding}) found"
        # an unkeyed hash of the phone would be a plaintext equivalent (dictionary attack)
        for form in (phone, national):
            assert hashlib.sha256(form.encode()).hexdigest().encode() not in lowered
        for form in (email, email.lower(), email.split("@")[0], email.split("@")[0].lower()):
            for encoding in ("ascii", "utf-16-le"):
                assert form.encode(encoding) not in raw, f"email {form!r} found"
            assert form.lower().encode() not in lowered
        assert name.encode() not in raw and name.lower().encode() not in lowered


def sqlite_files(database_url: str) -> list[Path]:
    path = Path(database_url.removeprefix("sqlite:///"))
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")) if p.exists()]


# -- at rest ---------------------------------------------------------------------------------------

@pytest.mark.skipif(bool(PG_URL), reason="reads the SQLite database and WAL files")
def test_database_and_wal_files_hold_no_phone_email_or_name_in_plain_text(network, database_url):
    enrol_people(network)
    # while the network is open, the latest pages live in the WAL: search it as it is
    files = sqlite_files(database_url)
    assert any(p.name.endswith("-wal") for p in files), "expected SQLite in WAL mode"
    assert_no_plaintext(b"".join(p.read_bytes() for p in files))
    # and after the connections close (a checkpoint copies the WAL into the main file)
    network.db.dispose()
    assert_no_plaintext(b"".join(p.read_bytes() for p in sqlite_files(database_url)))


@pytest.mark.skipif(bool(PG_URL), reason="reads the SQLite database and WAL files")
def test_nothing_in_the_data_directory_holds_personal_data_either(network, settings, database_url):
    enrol_people(network)
    network.db.dispose()
    raw = b"".join(p.read_bytes() for p in Path(settings.data_dir).rglob("*") if p.is_file())
    raw += b"".join(p.read_bytes() for p in sqlite_files(database_url))
    assert_no_plaintext(raw)


def test_stored_columns_are_ciphertext_and_keyed_index_only(network):
    """Database-independent (also on PostgreSQL): every stored text value of members is opaque."""
    _, members = enrol_people(network)
    rows = network.tx(lambda tx: tx.session.execute(select(Member)).scalars().all(), readonly=True)
    stored = "\n".join(str(value) for row in rows for value in (
        row.phone_ct, row.phone_bidx, row.email_ct, row.email_bidx, row.name_ct)).encode()
    assert_no_plaintext(stored)
    keyring = network.keyring
    by_id = {row.id: row for row in rows}
    for member_id, (phone, _, email, name) in zip(members, PEOPLE):
        row = by_id[member_id]
        assert row.phone_ct.startswith("v1.") and row.email_ct.startswith("v1.")
        # it decrypts back to the normalised value, and only for its own member and field
        assert keyring.decrypt("phone", member_id, row.phone_ct) == phone
        assert keyring.decrypt("email", member_id, row.email_ct) == email.lower()
        assert keyring.decrypt("name", member_id, row.name_ct) == name
        with pytest.raises(Exception):
            keyring.decrypt("phone", members[0] if member_id != members[0] else members[1], row.phone_ct)
        with pytest.raises(Exception):
            keyring.decrypt("email", member_id, row.phone_ct)
    # the same phone encrypts differently each time (random nonce)
    assert keyring.encrypt("phone", "m", PEOPLE[0][0]) != keyring.encrypt("phone", "m", PEOPLE[0][0])


def test_link_tokens_are_stored_only_as_hashes(network):
    partner, members = enrol_people(network)
    token = network.mint_link_token(partner, members[0])["link_token"]
    stored = network.tx(lambda tx: tx.session.execute(select(LinkToken.token_hash)).scalars().all(), readonly=True)
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    assert token not in stored


# -- lookup ----------------------------------------------------------------------------------------

def test_lookup_through_the_blind_index_whatever_the_format(network):
    partner = make_partner(network)
    member = network.enrol(partner, phone="+86 138 1234 5678", email="  Li.Lei@Example.COM ")["member_id"]
    for phone in phone_forms("+8613812345678", "13812345678")[:-1]:  # every full form of the number
        assert lookup(network, phone=phone) == member, phone
    for email in ("li.lei@example.com", "LI.LEI@EXAMPLE.COM", " Li.Lei@example.com"):
        assert lookup(network, email=email) == member, email
    assert lookup(network, phone="+8613900000000") is None
    assert lookup(network, email="li.lei@example.org") is None
    # a partner typing the same person in another format finds the same member, no duplicate
    assert network.enrol(partner, phone="138-1234-5678")["member_id"] == member
    assert network.enrol(partner, email="LI.LEI@example.com")["member_id"] == member
    assert network.tx(lambda tx: tx.session.execute(select(func.count()).select_from(Member)).scalar_one(),
                      readonly=True) == 1


def test_the_index_survives_a_restart_with_the_same_keys(network, settings, database_url, clock):
    partner = make_partner(network)
    member = network.enrol(partner, phone="13812345678")["member_id"]
    again = Network(settings, database_url=database_url, clock=clock)
    try:
        assert lookup(again, phone="+86 138 1234 5678") == member
    finally:
        again.close()


# -- consent ---------------------------------------------------------------------------------------

def _links(network, member_id):
    return network.tx(lambda tx: sorted(tx.session.execute(select(MemberLink.partner_id).where(
        MemberLink.member_id == member_id)).scalars().all()), readonly=True)


def _member_count(network):
    return network.tx(lambda tx: tx.session.execute(select(func.count()).select_from(Member)).scalar_one(),
                      readonly=True)


def test_an_existing_member_at_another_partner_needs_consent(network):
    coffee, books = make_partner(network, "Coffee"), make_partner(network, "Books")
    member = network.enrol(coffee, phone=PEOPLE[0][0], email=PEOPLE[0][2])["member_id"]
    count = _member_count(network)
    for contact in ({"phone": PEOPLE[0][0]}, {"phone": "138 1234 5678"}, {"email": PEOPLE[0][2].upper()},
                    {"phone": "+8613999999999", "email": PEOPLE[0][2]}):
        with pytest.raises(errors.ConsentRequired) as refusal:
            network.enrol(books, **contact)
        assert refusal.value.code == "consent_required" and refusal.value.status == 409
        # the refusal does not leak the member id to a partner without consent
        assert member not in str(refusal.value.to_problem())
    assert _member_count(network) == count
    assert _links(network, member) == [coffee]
    with pytest.raises(errors.UnknownMember):  # still not linked: books cannot earn for it
        network.earn(books, member, "e1", points=5)


def test_a_link_token_links_the_member(network):
    coffee, books = make_partner(network, "Coffee"), make_partner(network, "Books")
    member = network.enrol(coffee, phone=PEOPLE[0][0])["member_id"]
    minted = network.mint_link_token(coffee, member)
    result = network.enrol(books, link_token=minted["link_token"], customer_ref="B-7")
    assert result == {"member_id": member, "created": False, "linked": True}
    assert _links(network, member) == sorted([coffee, books])
    assert network.earn(books, member, "e1", points=5)["balance"]["available"] == 5
    # once linked, books enrolling the same phone gets the member back, no consent needed
    assert network.enrol(books, phone="138 1234 5678")["member_id"] == member


def test_link_tokens_are_single_use(network):
    coffee, books, third = (make_partner(network, n) for n in ("Coffee", "Books", "Third"))
    member = network.enrol(coffee, phone=PEOPLE[0][0])["member_id"]
    token = network.mint_link_token(coffee, member)["link_token"]
    network.enrol(books, link_token=token)
    for partner in (third, books):
        with pytest.raises(errors.InvalidLinkToken) as refusal:
            network.enrol(partner, link_token=token)
        assert refusal.value.code == "invalid_link_token"
    assert _links(network, member) == sorted([coffee, books])
    with pytest.raises(errors.InvalidLinkToken):
        network.enrol(third, link_token="made-up-token")


def test_link_tokens_expire_after_ten_minutes(network, clock):
    coffee, books, third = (make_partner(network, n) for n in ("Coffee", "Books", "Third"))
    member = network.enrol(coffee, phone=PEOPLE[0][0])["member_id"]
    fresh = network.mint_link_token(coffee, member)
    late = network.mint_link_token(coffee, member)
    assert fresh["expires_at"] == (clock.now() + timedelta(minutes=10)).isoformat()
    clock.advance(minutes=9, seconds=59)
    assert network.enrol(books, link_token=fresh["link_token"])["member_id"] == member
    clock.advance(seconds=1)  # exactly ten minutes
    with pytest.raises(errors.InvalidLinkToken):
        network.enrol(third, link_token=late["link_token"])
    assert third not in _links(network, member)


def test_only_a_linked_partner_can_mint_a_token(network):
    coffee, books = make_partner(network, "Coffee"), make_partner(network, "Books")
    member = network.enrol(coffee, phone=PEOPLE[0][0])["member_id"]
    with pytest.raises(errors.UnknownMember):
        network.mint_link_token(books, member)


# -- keys ------------------------------------------------------------------------------------------

def test_keys_are_generated_into_the_data_directory_on_first_use_owner_only(network, settings):
    keys = Path(settings.data_dir) / "keys"
    assert not (keys / "pii-keys.json").exists()  # nothing before first use
    partner = make_partner(network)
    network.enrol(partner, phone=PEOPLE[0][0])
    network.signing_key
    for name in ("pii-keys.json", "network-ed25519.pem"):
        path = keys / name
        assert path.exists(), name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, oct(path.stat().st_mode)
        assert path.stat().st_uid == os.getuid()
    content = (keys / "pii-keys.json").read_bytes()
    # a second start reuses the keys, never regenerates them
    again = Network(settings, database_url=network.db.url, clock=network.clock)
    try:
        again.keyring, again.signing_key
        assert (keys / "pii-keys.json").read_bytes() == content
        assert lookup(again, phone=PEOPLE[0][0]) is not None
    finally:
        again.close()

