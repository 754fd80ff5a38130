"""Reads that run all day read one index range, never the ledger's history.

Each of these read every row its table ever had, or every row of a member or partner, before
2026-12-03 (measured in docs/benchmarks.md, "2026-12-03 (third)"): a partner's next page of
transactions (PostgreSQL), a member's balance, the hold-timeout and expiry-reminder jobs, the activity
status pass, the sealer and a partner's list of statements. A benchmark on a fresh database never
sees that, and neither does a test of results, so each test here runs the code the request or job
runs (for a member's history, the route's own condition in a query of the same shape), captures the
statement it sent and asks the database for its plan. (On PostgreSQL the tables are small, so the
scans the indexes make unneeded are switched off, as in test_lot_indexes.py.)
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import event, select, text

from shared.ledger import holds
from shared.ledger.queries import entries_after, member_balance, partner_entries_page
from shared.models import Entry, LedgerLeaf
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


def test_a_page_of_transactions_starts_the_index_range_at_its_cursor(network):
    """A page is one range of (partner, xid, id) from the cursor, in the index's order (no sort), the
    cursor a row-value bound (a bound on xid alone walked the entries of the cursor's transaction
    before it: a batch, or every entry from before migration 0033); on PostgreSQL the listing's
    horizon bounds the same range."""
    cursor = (12345, "ent_x")
    with captured(network, "FROM entries") as sent:
        network.tx(lambda tx: partner_entries_page(tx, "ptn_x", cursor, 101), readonly=True)
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
    if is_postgres(network):
        network.tx(lambda tx: tx.session.execute(text("ANALYZE entries")))
    start = clock.now() - timedelta(days=10)
    with captured(network, "FROM entries") as sent:
        network.tx(lambda tx: issued_on(tx, partner, start, start + timedelta(days=1)), readonly=True)
    found = only_plan(network, sent)
    assert "ix_entries_partner_posted" in found, found
    if is_postgres(network):
        assert "posted_at >=" in found.split("ix_entries_partner_posted")[1].split("Filter")[0], found
    else:
        assert "(partner_id=? AND posted_at>? AND posted_at<?)" in found, found


def test_a_page_of_a_members_history_starts_the_index_range_at_its_cursor(network):
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


def test_a_members_balance_reads_only_the_lots_expiring_soon(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    with captured(network, "FROM lots") as sent:
        network.tx(lambda tx: member_balance(tx, member), readonly=True)
    found = only_plan(network, sent)
    assert "ix_lots_member_order" in found, found
    if is_postgres(network):  # an index condition, not a filter over all the member's open lots
        assert "expires_at <=" in found.split("Filter")[0], found
    else:
        assert "expires_at<?" in found, found


def test_the_hold_timeout_job_reads_open_holds_only(network):
    with captured(network, "FROM holds") as sent:
        assert network.tx(lambda tx: holds.expire_holds(tx, 100)) == 0
    assert "ix_holds_open_expires" in only_plan(network, sent)


def test_the_reminder_pass_reads_open_lots_by_expiry(network):
    with captured(network, "FROM lots") as sent:
        assert network.tx(lambda tx: reminders.reminder_batch(tx, "", 100)) == (None, 0)
    found = only_plan(network, sent)
    # one of the partial indexes of open lots (on an empty table PostgreSQL may take the funder's)
    assert "ix_lots_open_" in found, found


def test_the_status_pass_reads_each_members_newest_entries(network):
    partner = make_partner(network)
    member = make_member(network, partner)
    with captured(network, "FROM entries") as sent:
        assert network.tx(lambda tx: status.last_activity(tx, [member]), readonly=True) == {}
    found = only_plan(network, sent)
    assert "ix_entries_member_posted" in found, found
    assert ("Backward" in found and "Aggregate" not in found) if is_postgres(network) else \
        "CORRELATED SCALAR SUBQUERY" in found, found


def test_the_sealer_finds_its_floor_through_the_last_leaves(network):
    network.tx(lambda tx: tx.session.add(LedgerLeaf(leaf_index=0, entry_id="ent_x", leaf_hash=bytes(32),
                                                    sealed_at=datetime(2026, 11, 1, tzinfo=timezone.utc))))
    with captured(network, "FROM ledger_leaves") as sent:
        network.tx(lambda tx: store._recent(tx, store.LOOKBACK, 10)[0], readonly=True)
    found = plan(network, *sent[0])  # the floor; then the window's look-up of the leaves
    # the leaf index range, not the entry_id index walked from the ledger's first id
    assert ("Index Cond: (leaf_index >=" if is_postgres(network) else "(leaf_index>?)") in found, found


def test_a_partners_statements_are_one_range_of_the_party_index(network):
    """The settlements' key starts with the cycle: a party's statements were a scan of every cycle's
    rows for every party (migration 0024)."""
    with captured(network, "FROM settlements") as sent:
        network.tx(lambda tx: partner_statements(tx, "ptn_x", date(2026, 11, 1), 101), readonly=True)
    found = only_plan(network, sent)
    assert "ix_settlements_party_cycle" in found, found
    assert "Sort" not in found and "TEMP B-TREE" not in found, found


def test_the_reminder_pass_reads_a_members_open_lots_in_the_window_only(network, clock):
    """With reminders due, the pass reads the members' open lots in the window: one range of
    (member, open, expiry) or of the open lots by expiry, not every lot of a member with thousands."""
    partner = make_partner(network)
    member = make_member(network, partner)
    earned = network.earn(partner, member, "soon", points=10)
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
