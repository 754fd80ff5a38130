"""A member merge racing the programme's writers on PostgreSQL (SQLite's one writer queues the units,
so these cannot happen there): a referee's first qualifying earn and the expiry-reminder pass."""

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from shared.models import ExpiryReminder, ReferralBonus, WebhookDelivery
from shared.programme import jobs
from shared.programme import merge as merging
from shared.programme import reminders
from shared.programme.merge import merge_members
from shared.rules.store import set_rules
from shared.webhooks.endpoints import set_endpoint
from tests.factories import make_member, make_partner, verify_ok
from tests.interleave import Pause, overlap

pytestmark = pytest.mark.postgres

EXPIRES = datetime(2027, 11, 20, 2, tzinfo=timezone.utc)  # rolling:12 from the fixed clock's start


def test_a_referees_first_earn_pays_the_survivor_of_a_referrer_merged_while_it_waited(network, monkeypatch):
    """The earn reads the referrer (the duplicate) before its locks and waits for the merge holding it.
    Once the merge commits the duplicate is merged (never locked again) and the referral names the
    survivor: the earn follows it and locks the survivor, which is paid the bonus, once."""
    partner = make_partner(network)
    network.tx(lambda tx: set_rules(tx, partner, "referral: {bonus_points: 500}\n"))
    survivor, duplicate = make_member(network, partner), make_member(network, partner)
    referee = network.enrol(partner, phone="+8613900001111", referrer_member_id=duplicate)["member_id"]
    pause = Pause().after(monkeypatch, merging, "lock_members")
    both = overlap(lambda: network.tx(lambda tx: merge_members(tx, survivor, duplicate)),
                   lambda: network.earn(partner, referee, "first", points=10), pause)
    assert isinstance(both.first, dict), both.first
    assert both.second_waited, "the earn did not wait for the merge: no race was made"
    assert isinstance(both.second, dict), both.second
    assert (both.second.get("referral_bonus") or {}).get("points") == 500, both.second
    bonuses = network.tx(lambda tx: [(b.referee_member_id, b.referrer_member_id, b.points) for b in
                                     tx.session.execute(select(ReferralBonus)).scalars()], readonly=True)
    assert bonuses == [(referee, survivor, 500)]
    assert network.earn(partner, referee, "second", points=10).get("referral_bonus") is None
    assert {m: network.balance(m)["available"] for m in (survivor, duplicate, referee)} == \
        {survivor: 500, duplicate: 0, referee: 20}
    verify_ok(network)


def _expiring_pair(network, clock):
    partner = make_partner(network)
    network.settings.webhook_allow_private_targets = True  # nothing is delivered: the queue is read
    network.tx(lambda tx: set_endpoint(tx, partner, f"http://127.0.0.1:9/hooks/{partner}"))
    survivor, duplicate = make_member(network, partner), make_member(network, partner)
    network.earn(partner, survivor, "s", points=100)
    network.earn(partner, duplicate, "d", points=50)  # the same expiry day
    clock.set(EXPIRES - timedelta(days=30))
    return survivor, duplicate


def _told(network):
    """(member, days before, points) of every reminder row; (member, points) of every points.expiring queued."""
    def unit(tx):
        rows = sorted((r.member_id, r.days_before, r.points) for r in tx.session.execute(select(ExpiryReminder))
                      .scalars())
        sent = sorted((d.body for d in tx.session.execute(select(WebhookDelivery).where(
            WebhookDelivery.event_type == "points.expiring")).scalars()))
        return rows, sent

    rows, sent = network.tx(unit, readonly=True)
    return rows, sorted((json.loads(b)["data"]["member_id"], json.loads(b)["data"]["points"]) for b in sent)


def test_a_reminder_pass_holding_the_members_makes_a_merge_wait(network, clock, monkeypatch):
    """The pass reads its members' lots under their locks: a merge of two of them waits for the pass.
    Each member is told of its own points, as when the pass ran before the merge; the merge then keeps
    the survivor's reminder for that day (the duplicate's was told already): nothing stays on the
    merged id, and the survivor is not told again."""
    survivor, duplicate = _expiring_pair(network, clock)
    pause = Pause().after(monkeypatch, reminders, "_released")
    both = overlap(lambda: jobs.remind_expiring(network),
                   lambda: network.tx(lambda tx: merge_members(tx, survivor, duplicate)), pause)
    assert both.first == 2, both.first
    assert isinstance(both.second, dict), both.second
    clock.advance(hours=2)
    assert jobs.remind_expiring(network) == 0
    rows, sent = _told(network)
    assert rows == [(survivor, 30, 100)]
    assert sent == sorted([(survivor, 100), (duplicate, 50)])
    assert both.second_waited, "the merge did not wait for the pass"


def test_a_reminder_pass_follows_a_member_merged_before_its_locks(network, clock, monkeypatch):
    """The pass reads which members have points expiring before it locks them; a merge committed in
    between has moved the duplicate's lots to the survivor. The survivor is told of all its points
    (its own and the duplicate's), nothing is recorded on the merged id."""
    survivor, duplicate = _expiring_pair(network, clock)
    pause = Pause()
    locking = reminders.lock_members_following_merges

    def paused(*args, **kwargs):
        pause()
        return locking(*args, **kwargs)

    monkeypatch.setattr(reminders, "lock_members_following_merges", paused)
    both = overlap(lambda: jobs.remind_expiring(network),
                   lambda: network.tx(lambda tx: merge_members(tx, survivor, duplicate)), pause)
    assert isinstance(both.second, dict), both.second
    assert not both.second_waited  # the pass held no lock yet
    assert both.first == 1, both.first
    clock.advance(hours=2)
    assert jobs.remind_expiring(network) == 0
    rows, sent = _told(network)
    assert rows == [(survivor, 30, 150)]
    assert sent == [(survivor, 150)]
