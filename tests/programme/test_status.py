"""Activity status over simulated time: active, at risk after 90 quiet days, dormant after 180, back on activity."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

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


def merge(network, survivor, duplicate):
    from shared.programme.merge import merge_members

    network.tx(lambda tx: merge_members(tx, survivor, duplicate))


def test_a_survivor_counts_the_enrolment_of_the_duplicates_merged_into_it(network, clock):
    """The same person enrolled again yesterday under another record is not dormant once merged:
    without the merge that record would be active."""
    coffee, books = make_partner(network, "Coffee"), make_partner(network, "Books")
    survivor = make_member(network, coffee)  # an old record, never used
    clock.advance(days=150)
    earlier = make_member(network, books)
    clock.advance(days=50)
    duplicate = make_member(network, books)  # enrolled again, 200 days after the survivor
    enrolled = clock.now()
    merge(network, duplicate, earlier)  # merged into the duplicate first: now names the survivor
    clock.advance(days=1)
    merge(network, survivor, duplicate)
    assert jobs.recompute_statuses(network) == 0
    assert statuses(network)[survivor] == "active"
    clock.advance(days=89)  # 90 days since the latest enrolment of the person's records
    assert jobs.recompute_statuses(network) == 1
    assert statuses(network)[survivor] == "at_risk"
    assert history(network, survivor) == [("active", "at_risk", enrolled)]


def test_a_survivor_enrolled_after_its_duplicate_keeps_its_own_enrolment(network, clock):
    coffee, books = make_partner(network, "Coffee"), make_partner(network, "Books")
    duplicate = make_member(network, books)
    clock.advance(days=100)
    survivor = make_member(network, coffee)
    enrolled = clock.now()
    merge(network, survivor, duplicate)
    clock.advance(days=90)
    assert jobs.recompute_statuses(network) == 1
    assert history(network, survivor) == [("active", "at_risk", enrolled)]


def test_a_duplicates_earn_after_its_enrolment_is_the_last_activity(network, clock):
    coffee, books = make_partner(network, "Coffee"), make_partner(network, "Books")
    survivor = make_member(network, coffee)
    clock.advance(days=100)
    duplicate = make_member(network, books)
    clock.advance(days=10)
    network.earn(books, duplicate, "d-1", points=10)
    earned = clock.now()
    merge(network, survivor, duplicate)
    clock.advance(days=90)
    assert jobs.recompute_statuses(network) == 1
    assert history(network, survivor) == [("active", "at_risk", earned)]


def test_the_status_pass_finds_the_duplicates_enrolments_through_their_index(network):
    """The duplicates' enrolments are read in the statement that reads the members' own, through the
    partial index of merged members: a member nobody was merged into costs an index probe, no scan."""
    from tests.db.test_history_plans import captured, is_postgres, only_plan

    from shared.programme import status

    partner = make_partner(network)
    member = make_member(network, partner)
    with captured(network, "created_at") as sent:
        assert network.tx(lambda tx: status.recompute_batch(tx, "", 100)) == (member, 0)
    sent[:] = [(statement, parameters) for statement, parameters in sent if "FROM members" in statement]
    found = only_plan(network, sent)
    assert "ix_members_merged_into" in found, found
    if not is_postgres(network):
        assert "SCAN merged" not in found and "SCAN members" not in found, found


@pytest.mark.postgres  # the limit that failed is PostgreSQL's (the SQLite here took 66,000 parameters before)
def test_a_batch_larger_than_postgresqls_parameter_limit_runs(network, clock):
    """POINTSNET_PROGRAMME_BATCH_SIZE above 65,535 (PostgreSQL's limit of bound parameters in one
    statement): a batch's members are passed as one list parameter, not one parameter each, so the
    status and reminder batches still run (they failed with "number of parameters must be between 0
    and 65535"). The members are made, and the batches run, in one unit that is then rolled back:
    nothing is committed, so no table grows for the tests after this one (nor their query plans)."""
    from sqlalchemy import Text, cast, insert, literal

    from shared.models import ExpiryReminder, Lot
    from shared.programme import reminders, status

    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "seed", points=10)
    many, size = 66_000, 100_000

    class Done(Exception):
        pass

    def copies(tx, table, row: dict, made: dict):
        """INSERT … SELECT over generate_series: ``many`` copies of ``row`` in one statement made by the
        server (no parameter per row), each with the columns of ``made`` (SQL of the series' ``n``)."""
        n = func.generate_series(0, many - 1).column_valued("n")
        columns = list(table.columns)
        values = [made[c.name](n) if c.name in made else literal(row[c.name], type_=c.type) for c in columns]
        tx.session.execute(insert(table).from_select([c.name for c in columns], select(*values)))

    def numbered(prefix: str):
        return lambda n: literal(prefix) + func.lpad(cast(n, Text), 7, "0")

    def unit(tx):  # copies of the member and its lot, in two set-based statements, then one batch of each job
        person = dict(tx.session.execute(select(Member.__table__).where(Member.id == member)).one()._mapping)
        lot = dict(tx.session.execute(select(Lot.__table__).where(Lot.member_id == member)).one()._mapping)
        ids = [f"mem_bulk{n:07d}" for n in range(many)]
        person.update(phone_ct=None, phone_bidx=None, email_ct=None, email_bidx=None, name_ct=None)
        copies(tx, Member.__table__, person, {"id": numbered("mem_bulk")})
        copies(tx, Lot.__table__, lot, {"id": numbered("lot_bulk"), "member_id": numbered("mem_bulk")})
        tx.now += timedelta(days=90)
        last, changed = status.recompute_batch(tx, "", size)
        assert (last, changed) == (max(ids + [member]), many + 1)
        tx.now = lot["expires_at"] - timedelta(days=30)
        last, made = reminders.reminder_batch(tx, "", size)
        assert (last, made) == (max(ids + [member]), many + 1)
        assert tx.session.execute(select(func.count()).select_from(ExpiryReminder)).scalar_one() == many + 1
        raise Done

    try:
        with pytest.raises(Done):
            network.tx(unit)
        assert counts(network) == {"active": 1, "at_risk": 0, "dormant": 0}  # nothing was kept
    finally:
        if network.db.dialect == "postgresql":  # give back the space the rolled-back rows took, so the
            # tables' sizes (which the planner reads) are as small as before for the tests after this one
            from sqlalchemy import text

            with network.db.engine.connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                    text("VACUUM members, lots, expiry_reminders, member_status_history"))
