"""Activity status over simulated time: active, at risk after 90 quiet days, dormant after 180, back on activity."""

from sqlalchemy import select

from shared.models import Member, MemberStatusHistory
from shared.programme import jobs
from shared.programme.status import status_counts
from tests.conftest import START
from tests.factories import make_member, make_partner


def statuses(network):
    return dict(network.tx(lambda tx: tx.session.execute(select(Member.id, Member.activity_status)).all(),
                           readonly=True))


def history(network, member):
    return network.tx(lambda tx: [(r.from_status, r.to_status, r.last_activity_at) for r in tx.session.execute(
        select(MemberStatusHistory).where(MemberStatusHistory.member_id == member)
        .order_by(MemberStatusHistory.at)).scalars()], readonly=True)


def counts(network):
    return network.tx(status_counts, readonly=True)


def test_status_follows_activity_recency(network, clock, settings):
    settings.programme_batch_size = 2  # several bounded batches per pass
    partner = make_partner(network)
    quiet, busy, late = (make_member(network, partner) for _ in range(3))
    network.earn(partner, busy, "b-0", points=10)
    assert jobs.recompute_statuses(network) == 0
    assert counts(network) == {"active": 3, "at_risk": 0, "dormant": 0}

    clock.advance(days=89)
    network.earn(partner, busy, "b-1", points=10)
    assert jobs.recompute_statuses(network) == 0
    clock.advance(days=1)  # 90 days since enrolment for quiet and late
    assert jobs.recompute_statuses(network) == 2
    assert statuses(network) == {quiet: "at_risk", busy: "active", late: "at_risk"}
    assert history(network, quiet) == [("active", "at_risk", START)]

    clock.advance(days=90)  # 180 days
    network.earn(partner, late, "l-1", points=10)
    assert jobs.recompute_statuses(network) == 3
    assert statuses(network) == {quiet: "dormant", busy: "at_risk", late: "active"}
    assert [h[:2] for h in history(network, late)] == [("active", "at_risk"), ("at_risk", "active")]
    assert history(network, late)[-1][2] == clock.now()
    assert counts(network) == {"active": 1, "at_risk": 1, "dormant": 1}
    assert jobs.recompute_statuses(network) == 0  # nothing new: nothing recorded
    assert len(history(network, quiet)) == 2


def test_a_burn_counts_as_activity_an_expiry_does_not(network, clock):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "e", points=100)
    clock.advance(days=100)
    network.burn(partner, member, "b", points=10)
    network.expire_lots()
    assert jobs.recompute_statuses(network) == 0
    clock.advance(days=91)
    network.expire_lots()
    jobs.recompute_statuses(network)
    assert statuses(network)[member] == "at_risk"
