"""A reminder counts points whose hold is past its timeout as free (docs/programme.md, docs/ledger.md
decision 7): the hold is no longer open, even before the hold-timeout job has released it, as the
member view (GET /v1/members/{id}) already counts them. Points of a hold still open stay left out."""

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from shared.ledger.queries import member_balance
from shared.models import ExpiryReminder
from shared.programme import jobs
from tests.factories import make_member, make_partner

EXPIRES = datetime(2027, 11, 20, 2, tzinfo=timezone.utc)  # rolling:12 from the fixed clock's start


def reminders(network) -> dict[str, int]:
    return network.tx(lambda tx: {r.member_id: r.points for r in tx.session.execute(
        select(ExpiryReminder).where(ExpiryReminder.days_before == 30)).scalars()}, readonly=True)


def test_points_of_a_timed_out_hold_not_yet_released_are_reminded_of(network, clock, settings):
    partner = make_partner(network)
    member, open_holder = make_member(network, partner), make_member(network, partner)
    network.earn(partner, member, "e", points=100)
    network.earn(partner, open_holder, "o", points=100)
    clock.set(EXPIRES - timedelta(days=30, minutes=30))
    network.hold(partner, member, "h", points=30)  # times out 15 minutes later; the job has not run
    clock.set(EXPIRES - timedelta(days=30, minutes=5))
    network.hold(partner, open_holder, "oh", points=30)  # still open at the reminder
    clock.set(EXPIRES - timedelta(days=30))
    assert jobs.remind_expiring(network) == 2
    assert reminders(network) == {member: 100, open_holder: 70}
    # the member view (GET /v1/members/{id}) says the same of the member whose hold timed out
    view = network.tx(lambda tx: member_balance(tx, member, apply_due=True), readonly=True)
    assert view["available"] == 100 and sum(lot["points"] for lot in view["expiring_soon"]) == 100


def test_a_member_whose_only_points_are_held_past_timeout_is_reminded(network, clock, settings):
    settings.programme_batch_size = 1  # one member a batch: the batch's members are found with them
    partner = make_partner(network)
    first, held, last = (make_member(network, partner) for _ in range(3))
    for member in (first, held, last):
        network.earn(partner, member, f"e-{member}", points=40)
    clock.set(EXPIRES - timedelta(days=31))
    network.hold(partner, held, "h", points=40)  # all its points, timed out long before the reminder
    clock.set(EXPIRES - timedelta(days=30))
    assert jobs.remind_expiring(network) == 3
    assert reminders(network) == {first: 40, held: 40, last: 40}
    assert jobs.remind_expiring(network) == 0


def test_a_timed_out_hold_over_several_lots_frees_each_in_its_own_day(network, clock, settings):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "early", points=50)
    clock.advance(days=2)
    network.earn(partner, member, "late", points=50)  # expires two days after the first
    clock.set(EXPIRES - timedelta(days=31))
    network.hold(partner, member, "h", points=80)  # 50 of the early lot, 30 of the late one; times out
    clock.set(EXPIRES - timedelta(days=30))
    assert jobs.remind_expiring(network) == 1
    assert reminders(network) == {member: 50}
    clock.set(EXPIRES - timedelta(days=28))
    assert jobs.remind_expiring(network) == 1
    made = network.tx(lambda tx: sorted((r.expires_on, r.points) for r in tx.session.execute(
        select(ExpiryReminder)).scalars()), readonly=True)
    assert [points for _, points in made] == [50, 50]



def test_points_reserved_past_the_expiry_their_lot_had_then_are_not_reminded_of(network, clock, settings):
    """apply_due's rule: a timed-out hold's points go back free only if not past the expiry their lot
    had when the hold took them; a reversal's grace, which moved the lot's expiry later, is not theirs."""
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "e", points=100)
    network.burn(partner, member, "b", points=50)
    clock.set(EXPIRES - timedelta(hours=1))
    network.hold(partner, member, "h", points=50)  # the lot's other 50, reserved until its expiry
    clock.set(EXPIRES + timedelta(days=1))  # neither the expiry job nor the hold-timeout job has run
    network.reverse(partner, "r", "b")  # the 50 come back to the expired lot, with 30 days' grace
    lot = network.balance(member)["lots"][0]
    assert (lot["remaining"], lot["reserved"]) == (100, 50)
    assert jobs.remind_expiring(network) == 1
    view = network.tx(lambda tx: member_balance(tx, member, apply_due=True), readonly=True)
    assert reminders(network) == {member: 50} and view["available"] == 50
