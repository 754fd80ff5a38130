"""A member's consent withdrawn (shared/members/consent.py) racing the partner's writers on PostgreSQL
(SQLite's one writer queues the units, so these cannot happen there). The unlink holds the member's row
lock from its start; a posting or a link token that waits for it must find the link gone once it has it."""

import pytest
from sqlalchemy import select

from shared import errors
from shared.ledger.events import Event
from shared.members import consent
from shared.members.consent import unlink
from shared.models import LinkToken
from tests.factories import make_member, make_partner, verify_ok
from tests.interleave import Pause, overlap

pytestmark = pytest.mark.postgres


def _paused_unlink(network, monkeypatch, shop, member):
    """The unlink, paused once it holds the member's lock and has found no open hold."""
    pause = Pause().after(monkeypatch, consent, "open_holds_of")
    return pause, lambda: network.tx(lambda tx: unlink(tx, shop, member, requested_by="operator"))


def test_a_posting_waiting_for_the_unlink_finds_the_member_unknown(network, monkeypatch):
    """The batch reads its members' links before their locks: the earn and the hold of the member whose
    link went while the batch waited are refused per event (unknown_member, as for any member the partner
    cannot see); the earn of another member in the same batch posts."""
    shop = make_partner(network, "Shop")
    member, other = make_member(network, shop), make_member(network, shop)
    network.earn(shop, member, "before", points=100)
    pause, first = _paused_unlink(network, monkeypatch, shop, member)
    both = overlap(first, lambda: network.post(shop, [
        Event("earn", "e1", member, 10), Event("hold", "h1", member, 5), Event("earn", "e2", other, 7)]), pause)
    assert isinstance(both.first, dict), both.first
    assert both.second_waited, "the posting did not wait for the unlink: no race was made"
    earned, held, posted = both.second
    assert isinstance(earned, errors.UnknownMember) and isinstance(held, errors.UnknownMember), both.second
    assert isinstance(posted, dict) and posted["member_id"] == other, posted
    assert network.balance(member)["available"] == 100 and network.balance(member)["held"] == 0
    assert network.balance(other)["available"] == 7
    verify_ok(network)


def test_a_link_token_minted_while_the_unlink_holds_the_member_is_refused(network, monkeypatch):
    """The mint reads the link, then waits for the unlink's lock; the unlink deletes the partner's unused
    tokens before the mint writes its own. Under the lock the mint finds the link gone: refused, and no
    token of the partner for the member is left."""
    shop = make_partner(network, "Shop")
    member = make_member(network, shop)
    pause, first = _paused_unlink(network, monkeypatch, shop, member)
    both = overlap(first, lambda: network.mint_link_token(shop, member), pause)
    assert isinstance(both.first, dict), both.first
    assert both.second_waited, "the mint did not wait for the unlink: no race was made"
    assert isinstance(both.second, errors.UnknownMember), both.second
    assert network.tx(lambda tx: tx.session.execute(select(LinkToken.token_hash).where(
        LinkToken.member_id == member)).all(), readonly=True) == []
