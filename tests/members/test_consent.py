"""A member withdraws its consent from one partner (``pointsnet members unlink``, shared/members/consent.py):
that partner's link, customer reference and unused link tokens go, the withdrawal is recorded and audited,
the partner hears ``member.unlinked``; the member's points stay, linking again needs consent again, and
reports of a period before the withdrawal do not change."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from shared import errors
from shared.access import audit
from shared.ledger.cycles import cycle_date_for
from shared.members.consent import unlink
from shared.models import Entry, MemberLink, MemberUnlink
from shared.programme.merge import merge_members
from shared.reports.members import member_figures
from shared.reports.period import Period
from tests.cli.inprocess import pointsnet
from tests.factories import make_member, make_partner
from tests.webhooks.conftest import Receiver, deliveries, register

PHONE = "+8613812345678"


@pytest.fixture
def hooks():
    receiver = Receiver()
    yield receiver
    receiver.close()


def unlink_cli(network, database_url, clock, *args):
    env = {"POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
           "POINTSNET_CLOCK": clock.now().isoformat()}
    return pointsnet("members", "unlink", *args, env=env)


def links_of(network, member_id):
    return network.tx(lambda tx: {(r.partner_id, r.customer_ref) for r in tx.session.execute(
        select(MemberLink.partner_id, MemberLink.customer_ref).where(MemberLink.member_id == member_id))},
        readonly=True)


def test_the_operator_unlinks_a_member_from_one_partner_recorded_audited_and_told(
        network, database_url, clock, hooks):
    shop, cafe = make_partner(network, "Shop"), make_partner(network, "Cafe")
    for partner in (shop, cafe):
        register(network, hooks, partner)
    member = network.enrol(shop, phone=PHONE, customer_ref="C-1")["member_id"]
    network.enrol(cafe, link_token=network.mint_link_token(shop, member)["link_token"], customer_ref="K-1")
    spare = network.mint_link_token(shop, member)["link_token"]  # minted by the shop, never used
    network.earn(shop, member, "e1", points=100)
    hold = network.hold(shop, member, "h1", 10)["hold_id"]

    # the shop's open hold: refused, one line, exit 2; nothing changed
    refused = unlink_cli(network, database_url, clock, member, shop)
    assert refused.returncode == 2 and "holds_open" in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert links_of(network, member) == {(shop, "C-1"), (cafe, "K-1")}
    network.void(shop, hold)
    clock.advance(minutes=5)

    done = unlink_cli(network, database_url, clock, member, shop, "--reason", "REQ-7")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["member_id"], answer["partner_id"], answer["linked"], answer["requested_by"], answer["reason"]) \
        == (member, shop, False, "operator", "REQ-7")
    assert links_of(network, member) == {(cafe, "K-1")}  # the cafe's link stays; the shop's, with its ref, goes
    [record] = network.tx(lambda tx: tx.session.execute(select(MemberUnlink)).scalars().all(), readonly=True)
    assert (record.partner_id, record.member_id, record.requested_by, record.reason) == (shop, member, "operator",
                                                                                         "REQ-7")
    assert record.linked_at < record.unlinked_at == clock.now()
    [logged] = network.tx(lambda tx: audit.page(tx, action="member.unlinked")[0], readonly=True)
    assert (logged["user"], logged["target"], logged["detail"]["partner_id"], logged["detail"]["reason"]) == (
        "cli", member, shop, "REQ-7")
    # the shop alone hears it, with the id and the time only
    [told] = deliveries(network, event_type="member.unlinked")
    assert told.partner_id == shop
    assert json.loads(told.body)["data"] == {"member_id": member, "unlinked_at": clock.now().isoformat()
                                             .replace("+00:00", "Z")}
    assert PHONE not in told.body and "C-1" not in told.body and "REQ-7" not in told.body

    # the points and the history are the network's: untouched
    assert network.balance(member)["available"] == 100
    assert network.tx(lambda tx: tx.session.execute(select(Entry.reference).where(
        Entry.member_id == member, Entry.kind == "earn")).scalars().all(), readonly=True) == ["e1"]
    # the shop sees and serves it no more; its unused token is gone
    with pytest.raises(errors.UnknownMember):
        network.earn(shop, member, "e2", points=5)
    with pytest.raises(errors.UnknownMember):
        network.mint_link_token(shop, member)
    with pytest.raises(errors.InvalidLinkToken):
        network.enrol(make_partner(network, "Third"), link_token=spare)
    # again: not linked any more, one line, exit 2; so are an unknown member and an unknown partner
    for args in ((member, shop), ("mem_" + "0" * 26, shop), (member, "ptn_" + "0" * 26)):
        again = unlink_cli(network, database_url, clock, *args)
        assert again.returncode == 2 and len(again.stderr.splitlines()) == 1, again.stderr
        assert "unknown_member" in again.stderr or "unknown_partner" in again.stderr

    # linking again needs consent again: the contact alone is refused, a token of the cafe links it
    with pytest.raises(errors.ConsentRequired):
        network.enrol(shop, phone=PHONE)
    relinked = network.enrol(shop, link_token=network.mint_link_token(cafe, member)["link_token"],
                             customer_ref="C-1")
    assert relinked["member_id"] == member and links_of(network, member) == {(shop, "C-1"), (cafe, "K-1")}


def test_reports_of_a_period_before_a_withdrawal_do_not_change(network, clock):
    shop, other = make_partner(network, "Shop"), make_partner(network, "Other")
    kept = network.enrol(shop, phone=PHONE)["member_id"]
    withdrawn = make_member(network, shop, phone="+8613900001111", also_linked_to=(other,))
    for member in (kept, withdrawn):
        network.earn(shop, member, f"e-{member}", points=10)
    day1 = network.tx(lambda tx: cycle_date_for(tx.now, tx.settings))

    def figures(first, last):
        found = network.tx(lambda tx: member_figures(tx, shop, Period(first, last), rollup=False), readonly=True)
        return {name: found[name] for name in ("linked", "newly_linked", "status_mix", "active", "new")}

    before = figures(day1, day1)
    assert (before["linked"], before["newly_linked"], sum(before["status_mix"].values())) == (2, 2, 2)
    clock.advance(days=1)
    day2 = network.tx(lambda tx: cycle_date_for(tx.now, tx.settings))
    network.tx(lambda tx: unlink(tx, shop, withdrawn, requested_by="partner"))
    assert figures(day1, day1) == before  # the day before the withdrawal: as it was
    assert (figures(day2, day2)["linked"], figures(day2, day2)["newly_linked"]) == (1, 0)
    assert (figures(day1, day2)["linked"], figures(day1, day2)["newly_linked"]) == (1, 2)
    # linked again the same day (the member's consent, a token of the other partner): linked at the day's
    # end and newly linked in it, counted once over both days; the first day still as it was
    clock.advance(hours=1)
    network.enrol(shop, link_token=network.mint_link_token(other, withdrawn)["link_token"])
    assert (figures(day2, day2)["linked"], figures(day2, day2)["newly_linked"]) == (2, 1)
    assert (figures(day1, day2)["linked"], figures(day1, day2)["newly_linked"]) == (2, 2)
    assert figures(day1, day1) == before


def test_reports_count_a_person_once_after_a_withdrawal_and_a_merge(network, clock):
    """S withdraws its consent from the shop, then its duplicate D, linked to the shop, is merged into S:
    D's link moves onto S (its consent moves with its record), so the shop's link periods hold S twice
    (the withdrawn one and the moved one) and D's once. Every report counts the person once, and its
    status mix is of the same people."""
    shop, other = make_partner(network, "Shop"), make_partner(network, "Other")
    survivor = make_member(network, shop, phone=PHONE, also_linked_to=(other,))
    duplicate = make_member(network, shop, phone="+8613900001111")
    day1 = network.tx(lambda tx: cycle_date_for(tx.now, tx.settings))
    clock.advance(days=1)
    day2 = network.tx(lambda tx: cycle_date_for(tx.now, tx.settings))
    network.tx(lambda tx: unlink(tx, shop, survivor, requested_by="operator"))
    clock.advance(hours=1)
    network.tx(lambda tx: merge_members(tx, survivor, duplicate))
    assert links_of(network, survivor) == {(shop, None), (other, None)}  # linked to the shop again, by D's link

    def figures(first, last):
        found = network.tx(lambda tx: member_figures(tx, shop, Period(first, last), rollup=False), readonly=True)
        return found["linked"], found["newly_linked"], sum(found["status_mix"].values())

    assert figures(day1, day1) == (1, 1, 1)  # S and D then: one person now
    assert figures(day2, day2) == (1, 0, 1)
    assert figures(day1, day2) == (1, 1, 1)
