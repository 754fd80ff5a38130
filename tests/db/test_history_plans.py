"""Reads that run all day read one index range, never the ledger's history.

Each of these read every row its table ever had, or every row of a member or partner, before
2026-12-03 (measured in docs/benchmarks.md, "2026-12-03 (third)"): a partner's next page of
transactions (PostgreSQL), a member's balance, the hold-timeout and expiry-reminder jobs, the activity
status pass, the sealer and a partner's list of statements. A benchmark on a fresh database never
sees that, and neither does a test of results, so each test here runs the code the request or job
runs (for a member's history, the route's own condition in a query of the same shape), captures the
statement it sent and asks the database for its plan. (On PostgreSQL the tables are small, so the
scans the indexes make unneeded are switched off, as in test_lot_indexes.py.) Each test first gives
the tables it reads a past and then their statistics (``with_a_past``, ``analyzed``), so the plan is
chosen over its own rows, the same alone, in any order and in a full run: on PostgreSQL the
statistics earlier tests left (of rows the reset deleted since) chose other plans.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import event, func, insert, select, text

from shared.ledger import holds
from shared.ledger.events import Event
from shared.ledger.queries import entries_after, member_balance, partner_entries_page
from shared.models import Cycle, Entry, Lot, Settlement, SettlementRun
from shared.settlement.runs import partner_statements
from shared.programme import reminders, status
from shared.transparency import store
from tests.factories import make_member, make_partner


@contextmanager
def captured(network, marker: str):
    """The statements containing ``marker`` the engine sends meanwhile, with their parameters."""
    sent: list[tuple[str, object]] = []

    def listen(connection, cursor, statement, parameters, context, executemany):
        if marker in statement and not executemany:
            sent.append((statement, parameters))

    event.listen(network.db.engine, "before_cursor_execute", listen)
    try:
        yield sent
    finally:
        event.remove(network.db.engine, "before_cursor_execute", listen)


def plan(network, statement: str, parameters) -> str:
    with network.db.engine.begin() as connection:
        if network.db.dialect == "postgresql":
            for setting in ("enable_seqscan", "enable_bitmapscan"):
                connection.execute(text(f"SET LOCAL {setting} = off"))
            rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        else:
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        return "\n".join(str(row[-1]) for row in rows)


def only_plan(network, sent) -> str:
    assert len(sent) == 1, sent
    return plan(network, *sent[0])


def is_postgres(network) -> bool:
    return network.db.dialect == "postgresql"


def analyzed(network, *tables: str) -> None:
    """The statistics of the tables a plan reads, taken now, over the rows this test made: a plan must
    not depend on those earlier tests left (on PostgreSQL the reset deletes their rows, and the
    statistics of those rows stay until the next ANALYZE, by autovacuum whenever it comes by)."""
    for table in tables:
        network.tx(lambda tx: tx.session.execute(text(f"ANALYZE {table}")))


def with_a_past(network, clock, *, days: int = 6, members: int = 8) -> tuple[list[str], list[str]]:
    """A ledger with a past for the plan to be chosen over: three partners' members earning, spending,
    holding (captured, voided, left open) and reversing day after day, so that no member, partner or
    day is more than a small share of a table (a plan chosen over empty tables says nothing of the
    network's). Returns the partners and the members; the clock ends ``days`` later."""
    partners = [make_partner(network, f"Shop {n}", issuance_fee="0.05") for n in range(3)]
    people = [make_member(network, partners[0], also_linked_to=tuple(partners[1:])) for _ in range(members)]
    for day in range(days):
        for n, partner in enumerate(partners):
            tag = f"{day}-{n}"
            network.post(partner, [Event("earn", f"e{tag}-{i}", member, points=100) for i, member in enumerate(people)])
            network.post(partner, [Event("burn", f"b{tag}-{i}", member, points=20) for i, member in enumerate(people)])
            held = network.post(partner, [Event("hold", f"h{tag}-{i}", member, points=10)
                                          for i, member in enumerate(people)])
            network.post(partner, [Event("capture", f"c{tag}-{i}", hold_id=hold["hold_id"]) if i % 3 == 0 else
                                   Event("void", f"v{tag}-{i}", hold_id=hold["hold_id"])
                                   for i, hold in enumerate(held) if i % 3 != 2])  # a third stay open
            network.post(partner, [Event("reversal", f"r{tag}-{i}", original_reference=f"b{tag}-{i}", points=5)
                                   for i in range(0, members, 4)])
        clock.advance(days=1)
    network.expire_holds()  # the job has run: the holds left open timed out
    return partners, people


def test_a_page_of_transactions_starts_the_index_range_at_its_cursor(network, clock):
    """A page is one range of (partner, xid, id) from the cursor, in the index's order (no sort), the
    cursor a row-value bound (a bound on xid alone walked the entries of the cursor's transaction
    before it: a batch, or every entry from before migration 0033); on PostgreSQL the listing's
    horizon bounds the same range."""
    partners, _members = with_a_past(network, clock)
    analyzed(network, "entries")
    cursor = (12345, "ent_x")
    with captured(network, "FROM entries") as sent:
        network.tx(lambda tx: partner_entries_page(tx, partners[0], cursor, 101), readonly=True)
    found = only_plan(network, sent)
    assert "ix_entries_partner_xid" in found, found
    if is_postgres(network):  # the OR alone was a filter: each page walked every entry before it
        condition = found.split("ix_entries_partner_xid")[1].split("Filter")[0]
        assert "ROW(xid, (id)::text) > ROW(12345" in condition and "xid <" in condition, found
        assert "Sort" not in found, found
    else:
        assert "(partner_id=? AND (xid,id)>(?,?))" in found and "TEMP B-TREE" not in found, found


def test_a_partners_issuance_of_the_day_is_one_range_of_the_partner_time_index(network, clock):
    """Why ix_entries_partner_posted stays beside ix_entries_partner_xid: a daily issuance cap's
    counter is seeded with the partner's earns of the day, one range of (partner, posted_at), not a
    walk through every entry the partner ever posted."""
    from shared.programme.limits import issued_on

    partner = make_partner(network)
    member = make_member(network, partner)
    for day in range(40):
        network.earn(partner, member, f"e{day}", points=1)
        clock.advance(days=1)
    analyzed(network, "entries")
    start = clock.now() - timedelta(days=10)
    with captured(network, "FROM entries") as sent:
        network.tx(lambda tx: issued_on(tx, partner, start, start + timedelta(days=1)), readonly=True)
    found = only_plan(network, sent)
    assert "ix_entries_partner_posted" in found, found
    if is_postgres(network):
        assert "posted_at >=" in found.split("ix_entries_partner_posted")[1].split("Filter")[0], found
    else:
        assert "(partner_id=? AND posted_at>? AND posted_at<?)" in found, found


def test_a_page_of_a_members_history_starts_the_index_range_at_its_cursor(network, clock):
    with_a_past(network, clock)
    analyzed(network, "entries")
    cursor = (datetime(2026, 11, 1, tzinfo=timezone.utc), "ent_x")
    with captured(network, "FROM entries") as sent:
        network.tx(lambda tx: tx.session.execute(
            select(Entry.id).where(Entry.member_id == "mem_x", entries_after(cursor, descending=True))
            .order_by(Entry.posted_at.desc(), Entry.id.desc()).limit(51)).all(), readonly=True)
    found = only_plan(network, sent)
    assert "ix_entries_member_posted" in found, found
    if is_postgres(network):
        assert "posted_at <=" in found.split("Filter")[0], found
    else:
        assert "(member_id=? AND posted_at<?)" in found, found


def test_a_members_balance_reads_only_the_lots_expiring_soon(network, clock):
    _partners, members = with_a_past(network, clock, members=60)
    member = members[0]  # with a lot a day from each partner: a small share of the lots
    # weeks before the past's lots expire: every member's are expiring soon, this member's a small share
    first = network.tx(lambda tx: tx.session.execute(select(func.min(Lot.expires_at))).scalar_one(), readonly=True)
    clock.set(first - timedelta(days=20))
    analyzed(network, "lots")
    with captured(network, "FROM lots") as sent:
        network.tx(lambda tx: member_balance(tx, member), readonly=True)
    found = only_plan(network, sent)
    assert "ix_lots_member_order" in found, found
    if is_postgres(network):  # an index condition, not a filter over all the member's open lots
        assert "expires_at <=" in found.split("Filter")[0], found
    else:
        assert "expires_at<?" in found, found


def test_the_hold_timeout_job_reads_open_holds_only(network, clock):
    with_a_past(network, clock)
    analyzed(network, "holds")
    with captured(network, "FROM holds") as sent:
        assert network.tx(lambda tx: holds.expire_holds(tx, 100)) == 0
    assert "ix_holds_open_expires" in only_plan(network, sent)


def test_the_reminder_pass_reads_open_lots_by_expiry(network, clock):
    with_a_past(network, clock)
    analyzed(network, "lots")
    with captured(network, "FROM lots") as sent:
        assert network.tx(lambda tx: reminders.reminder_batch(tx, "", 100)) == (None, 0)
    found = only_plan(network, sent)
    # one of the partial indexes of open lots (on an empty table PostgreSQL may take the funder's)
    assert "ix_lots_open_" in found, found


def test_the_status_pass_reads_each_members_newest_entries(network, clock):
    with_a_past(network, clock)
    partner = make_partner(network)
    member = make_member(network, partner)
    analyzed(network, "members", "entries")
    with captured(network, "FROM entries") as sent:
        assert network.tx(lambda tx: status.last_activity(tx, [member]), readonly=True) == {}
    found = only_plan(network, sent)
    assert "ix_entries_member_posted" in found, found
    assert ("Backward" in found and "Aggregate" not in found) if is_postgres(network) else \
        "CORRELATED SCALAR SUBQUERY" in found, found


def test_the_sealer_finds_its_floor_through_the_last_leaves(network, clock):
    with_a_past(network, clock)
    network.seal()
    analyzed(network, "ledger_leaves", "entries")
    with captured(network, "FROM ledger_leaves") as sent:
        network.tx(lambda tx: store._recent(tx, store.LOOKBACK, 10)[0], readonly=True)
    found = plan(network, *sent[0])  # the floor; then the window's look-up of the leaves
    # the leaf index range, not the entry_id index walked from the ledger's first id
    assert ("Index Cond: (leaf_index >=" if is_postgres(network) else "(leaf_index>?)") in found, found


def test_a_partners_statements_are_one_range_of_the_party_index(network, clock):
    """The settlements' key starts with the cycle: a party's statements were a scan of every cycle's
    rows for every party (migration 0024)."""
    # a network's settled past, written as rows (settling it cycle by cycle would take minutes): a
    # year of cycles of 100 parties, so that a party's statements are a small share of the table
    first, parties = date(2025, 11, 1), [f"ptn_{n:03d}" for n in range(100)]
    cycles = [first + timedelta(days=n) for n in range(365)]
    with network.db.engine.begin() as connection:
        connection.execute(insert(Cycle), [{"cycle_date": day, "status": "closed"} for day in cycles])
        connection.execute(insert(SettlementRun), [
            {"cycle_date": day, "run_id": f"run_{day:%Y%m%d}", "directory": f"settlements/{day}",
             "manifest_sha256": "0" * 64, "settled_at": datetime(2026, 11, 1, tzinfo=timezone.utc)} for day in cycles])
        connection.execute(insert(Settlement), [
            {"cycle_date": day, "party": party, "net_minor": 100, "payment_date": day + timedelta(days=2),
             "status": "due"} for day in cycles for party in parties])
    analyzed(network, "settlements")
    with captured(network, "FROM settlements") as sent:
        network.tx(lambda tx: partner_statements(tx, parties[0], cycles[-1], 101), readonly=True)
    found = only_plan(network, sent)
    assert "ix_settlements_party_cycle" in found, found
    assert "Sort" not in found and "TEMP B-TREE" not in found, found


def test_the_reminder_pass_reads_a_members_open_lots_in_the_window_only(network, clock):
    """With reminders due, the pass reads the members' open lots in the window: one range of
    (member, open, expiry) or of the open lots by expiry, not every lot of a member with thousands."""
    with_a_past(network, clock)
    clock.advance(days=max(network.settings.expiry_reminder_days) + 10)  # the past's lots expire well before
    partner = make_partner(network)
    member = make_member(network, partner)
    earned = network.earn(partner, member, "soon", points=10)
    analyzed(network, "lots")
    clock.set(datetime.fromisoformat(earned["lots"][0]["expires_at"]) - timedelta(days=5))
    with captured(network, "FROM lots") as sent:
        assert network.tx(lambda tx: reminders.reminder_batch(tx, "", 100))[1] == 1
    assert len(sent) == 2, sent
    found = plan(network, *sent[1])
    # the window is an index condition (PostgreSQL may start from the open lots by expiry instead)
    if is_postgres(network):
        [lots] = [node for node in found.split("->") if " on lots" in node]  # the join's lots side
        assert "expires_at >" in lots.split("Filter")[0], found
    else:
        assert "ix_lots_member_order" in found and "expires_at>?" in found, found
