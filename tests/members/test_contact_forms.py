"""Enrolment by contact: an e-mail local part in full-width or other compatibility characters is refused
(never a second member under another spelling of one address), and a phone of one member with the
e-mail of another is refused as ``contact_conflict`` rather than answered with whichever row came first."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from shared import errors
from shared.members.enrolment import find_member
from shared.members.privacy import normalise_email
from shared.models import Member
from tests.factories import make_partner
from tests.partner_api.conftest import api, assert_problem, partners, serve, shop  # noqa: F401  (fixtures)


@pytest.mark.parametrize("typed", ["ｌｉ.lei@example.com", "Ｌi.lei@example.com", "ﬁ@example.com",
                                   "li.lei²@example.com"])
def test_a_local_part_that_compatibility_normalisation_changes_is_refused(typed):
    with pytest.raises(errors.InvalidContact) as caught:
        normalise_email(typed)
    assert "@" not in caught.value.detail.split("before the @")[-1] and typed not in caught.value.detail


@pytest.mark.parametrize("typed, indexed", [
    ("Li.Lei@ＥＸＡＭＰＬＥ.com", "li.lei@example.com"),  # the domain is folded, as before
    ("李雷@example.com", "李雷@example.com"),
    ("\u212aai@example.com", "kai@example.com"),  # the Kelvin sign: canonically K
])
def test_other_addresses_read_as_before(typed, indexed):
    assert normalise_email(typed) == indexed


def _members(network) -> int:
    return network.tx(lambda tx: tx.session.scalar(select(func.count()).select_from(Member)), readonly=True)


def test_a_full_width_local_part_never_enrols_the_person_twice(network):
    home, other = make_partner(network, "A"), make_partner(network, "B")
    first = network.enrol(home, email="li.lei@example.com")["member_id"]
    for typed in ("ｌｉ.lei@example.com", "ＬＩ.ＬＥＩ@example.com"):
        with pytest.raises(errors.InvalidContact):
            network.enrol(home, email=typed)
        with pytest.raises(errors.InvalidContact):  # not a new member at another partner either
            network.enrol(other, email=typed)
    network.enrol(make_partner(network, "C"), email="fi@example.com")
    with pytest.raises(errors.InvalidContact):
        network.enrol(home, email="ﬁ@example.com")
    assert _members(network) == 2
    assert network.enrol(home, email="LI.lei@example.com") == {"member_id": first, "created": False, "linked": True}


def test_the_api_answers_invalid_contact_for_a_full_width_local_part(network, shop, partners):
    shop.ok("POST", "/v1/members", {"email": "li.lei@example.com"})
    refused = assert_problem(shop.call("POST", "/v1/members", {"email": "ｌｉ.lei@example.com"}),
                             422, "invalid_contact")
    assert "ｌｉ" not in refused["detail"]
    assert_problem(partners("Other").call("POST", "/v1/members", {"email": "ｌｉ.lei@example.com"}),
                   422, "invalid_contact")
    assert _members(network) == 1


def test_a_phone_of_one_member_with_the_email_of_another_is_a_contact_conflict(network):
    home, other = make_partner(network, "A"), make_partner(network, "B")
    by_phone = network.enrol(home, phone="+8613912345678")["member_id"]
    by_email = network.enrol(other, email="li.lei@example.com")["member_id"]
    for partner in (home, other, make_partner(network, "C")):  # linked to one, the other, or neither
        with pytest.raises(errors.Conflict) as caught:
            network.enrol(partner, phone="+86 139 1234 5678", email="Li.Lei@example.com")
        assert caught.value.code == "contact_conflict" and caught.value.status == 409
        assert by_phone not in caught.value.detail and by_email not in caught.value.detail
        assert "5678" not in caught.value.detail and "li.lei" not in caught.value.detail.lower()
    assert _members(network) == 2
    # each alone still finds its member, and the lookup by both names neither
    assert network.enrol(home, phone="+8613912345678")["member_id"] == by_phone
    assert network.tx(lambda tx: find_member(tx, network.keyring, email="li.lei@example.com"),
                      readonly=True) == by_email
    with pytest.raises(errors.Conflict):
        network.tx(lambda tx: find_member(tx, network.keyring, phone="+8613912345678", email="li.lei@example.com"),
                   readonly=True)


def test_a_duplicate_merged_into_the_other_is_no_conflict(network):
    from shared.programme.merge import merge_members

    home = make_partner(network, "A")
    survivor = network.enrol(home, phone="+8613912345678")["member_id"]
    duplicate = network.enrol(home, email="li.lei@example.com")["member_id"]
    network.tx(lambda tx: merge_members(tx, survivor, duplicate))
    assert network.enrol(home, phone="+8613912345678", email="li.lei@example.com") == {
        "member_id": survivor, "created": False, "linked": True}


def test_the_api_answers_contact_conflict_and_keeps_it_for_the_key(network, shop, partners):
    by_phone = shop.ok("POST", "/v1/members", {"phone": "+8613912345678"})["member_id"]
    other = partners("Other")
    other.ok("POST", "/v1/members", {"email": "li.lei@example.com"})
    body = {"phone": "+8613912345678", "email": "li.lei@example.com", "customer_ref": "C-1"}
    for partner in (shop, other):
        problem = assert_problem(partner.call("POST", "/v1/members", body, idempotency_key="both-1"),
                                 409, "contact_conflict")
        assert by_phone not in problem["detail"]
        again = partner.call("POST", "/v1/members", body, idempotency_key="both-1")
        assert again.status_code == 409 and again.headers.get("Idempotent-Replayed") == "true"
    assert _members(network) == 2


def test_a_phone_number_with_an_extension_is_refused_not_taken_as_the_switchboards(shop):
    """E.164 has no extension: "+86 10 6552 9988 ext. 101" and "… ext. 102" were both the switchboard's
    number, so the second person enrolled answered the first one's member (until 2026-12-07). A member's
    number is its own: one with an extension is refused, nothing recorded."""
    first = shop.call("POST", "/v1/members", {"phone": "+86 10 6552 9988 ext. 101"})
    problem = assert_problem(first, 422, "invalid_contact")
    assert "without an extension" in problem["detail"] and "9988" not in problem["detail"]
    assert shop.ok("POST", "/v1/members", {"phone": "+86 10 6552 9988"})["created"] is True  # the number itself


@pytest.mark.parametrize("spelling", ["+86 10 6552 9988 / x101", "+86 10 6552 9988/x102", "+86 10 6552 9988 \\ x103",
                                      "tel:+861065529988;isub=7"])
def test_extensions_the_parser_drops_unsaid_are_refused_too(shop, network, spelling):
    """phonenumbers reads "/ x101" as a second number and drops it, and ignores an RFC 3966 sub-address
    and an ext after phone-context: none reached the extension check, so every extension of a switchboard
    so spelled enrolled as the switchboard's one member."""
    problem = assert_problem(shop.call("POST", "/v1/members", {"phone": spelling}), 422, "invalid_contact")
    assert "without an extension" in problem["detail"] and "9988" not in problem["detail"]
    assert _members(network) == 0
    # the RFC 3966 form of the number itself still reads
    assert shop.ok("POST", "/v1/members", {"phone": "tel:1065529988;phone-context=+86"})["created"] is True


def test_a_refused_email_is_not_repeated_in_the_refusal(shop):
    """The validator's IDNA error quoted the domain label it refused: the refusal (kept for the key, shown
    on the dashboard) repeated part of the address."""
    problem = assert_problem(shop.call("POST", "/v1/members", {"email": "li.lei@zhangwei-family\U0001F4A9.com"}),
                             422, "invalid_contact")
    assert "zhangwei" not in problem["detail"] and "U+1F4A9" in problem["detail"], problem["detail"]


def test_an_ext_after_phone_context_is_refused_where_it_fits():
    """Longer than the API's 32 characters, but the dashboard's member search reads it: it found the
    switchboard's member."""
    from shared.errors import InvalidContact
    from shared.members.privacy import normalise_phone

    with pytest.raises(InvalidContact, match="without an extension"):
        normalise_phone("tel:1065529988;phone-context=+86;ext=104", "CN")
    assert normalise_phone("tel:1065529988;phone-context=+86", "CN") == "+861065529988"
    # a ";" ending the text is no parameter: a spreadsheet's leftover, read as before
    for leftover in ("+1 201 555 0123;", "+1-201-555-0123 ;", "+1 201 555 0123;;", "; +1 201 555 0123"):
        assert normalise_phone(leftover, "US") == "+12015550123", leftover


def test_a_link_token_for_an_erased_member_is_member_erased(shop, network):
    """docs/partner-integration.md: once erased, the id answers 409 member_erased (404 for a GET); minting a
    link token answered 404 unknown_member (until 2026-12-07)."""
    member = shop.ok("POST", "/v1/members", {"phone": "+8613900000021"})["member_id"]
    network.erase_member(member)
    assert_problem(shop.call("POST", f"/v1/members/{member}/link-tokens"), 409, "member_erased")
    assert_problem(shop.call("GET", f"/v1/members/{member}"), 404, "unknown_member")


def test_a_second_contact_given_with_the_one_that_finds_the_member_is_recorded(shop, partners, network):
    """A till sends the e-mail that finds the member and a phone the member has not given before: the phone
    was dropped (until 2026-12-07), and the next enrolment by it made a second member of the same person.
    It is recorded if the member has no phone; a member's own phone is never replaced."""
    member = shop.ok("POST", "/v1/members", {"email": "li.lei@example.com"})["member_id"]
    again = shop.ok("POST", "/v1/members", {"email": "li.lei@example.com", "phone": "+8613900000001"})
    assert (again["member_id"], again["created"]) == (member, False)
    assert shop.ok("POST", "/v1/members", {"phone": "+86 139 0000 0001"})["member_id"] == member
    # the member has a phone now: another given with its e-mail changes nothing
    shop.ok("POST", "/v1/members", {"email": "li.lei@example.com", "phone": "+8613900000002"})
    other = shop.ok("POST", "/v1/members", {"phone": "+8613900000002"})
    assert other["created"] is True and other["member_id"] != member
    # a phone a merged duplicate holds stays with the duplicate (it finds the survivor already)
    from shared.programme.merge import merge_members

    survivor = shop.ok("POST", "/v1/members", {"email": "han.mei@example.com"})["member_id"]
    duplicate = shop.ok("POST", "/v1/members", {"phone": "+8613900000003"})["member_id"]
    network.tx(lambda tx: merge_members(tx, survivor, duplicate))
    assert shop.ok("POST", "/v1/members", {"email": "han.mei@example.com", "phone": "+8613900000003"})[
        "member_id"] == survivor
    assert shop.ok("POST", "/v1/members", {"phone": "+8613900000003"})["member_id"] == survivor
