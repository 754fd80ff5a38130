"""The status and reminder passes write set-based (a chunk of rows a statement): every chunk is written,
and what is stored is what the row-by-row statements stored."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from sqlalchemy import insert, select, text

from shared.db import bulk
from shared.models import ExpiryReminder, Member, MemberStatusHistory
from shared.programme import jobs
from tests.factories import make_member, make_partner

EXPIRES = datetime(2027, 11, 20, 2, tzinfo=timezone.utc)  # rolling:12 from the fixed clock's start


def test_both_passes_write_every_chunk(network, clock, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK", 2)  # five rows: three statements, the last one short
    partner = make_partner(network)
    members = sorted(make_member(network, partner) for _ in range(5))
    for n, member in enumerate(members):
        network.earn(partner, member, f"e-{n}", points=10 + n)
    clock.advance(days=90)
    assert jobs.recompute_statuses(network) == 5
    clock.set(EXPIRES - timedelta(days=30))
    assert jobs.remind_expiring(network) == 5

    def read(tx):
        return (dict(tx.session.execute(select(Member.id, Member.activity_status)).all()),
                sorted(tx.session.execute(select(MemberStatusHistory.member_id, MemberStatusHistory.to_status)).all()),
                sorted(tx.session.execute(select(ExpiryReminder.member_id, ExpiryReminder.points)).all()))
    found, history, reminders = network.tx(read, readonly=True)
    assert [found[m] for m in members] == ["at_risk"] * 5
    assert history == [(m, "at_risk") for m in members]
    assert reminders == [(m, 10 + n) for n, m in enumerate(members)]


def test_a_set_based_row_is_stored_as_the_row_by_row_insert_stored_it(network):
    """The same values through both writes, read back raw (SQLite: the very text stored)."""
    partner = make_partner(network)
    member = make_member(network, partner)
    at = datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8)))  # not UTC, microseconds
    row = {"member_id": member, "expires_on": date(2027, 11, 20), "days_before": 30, "points": 2**40,
           "first_expires_at": at, "created_at": at.replace(microsecond=0)}
    table = ExpiryReminder.__table__

    def write(tx):
        tx.session.execute(insert(table), [{**row, "id": "rem_rows", "days_before": 7}])
        bulk.insert_rows(tx, table, [{**row, "id": "rem_set"}])
        return [tuple(r) for r in tx.session.execute(text(
            "SELECT expires_on, points, first_expires_at, created_at FROM expiry_reminders ORDER BY id"))]
    by_rows, by_set = network.tx(write)
    assert by_set == by_rows


def test_a_value_too_long_for_its_column_is_refused_as_row_by_row_not_cut(network):
    """PostgreSQL refuses a value longer than its VARCHAR(n) column; an explicit cast of the rows' array
    to VARCHAR(n)[] would cut it to n characters instead, and store another id than the one given."""
    partner = make_partner(network)
    member = make_member(network, partner)
    row = {"id": "rem_" + "x" * 60, "member_id": member, "expires_on": date(2027, 11, 20), "days_before": 30,
           "points": 5, "first_expires_at": EXPIRES, "created_at": EXPIRES}
    table = ExpiryReminder.__table__

    def outcome(write):
        def unit(tx):
            write(tx)
            return tx.session.execute(select(ExpiryReminder.id)).scalars().all()
        try:
            return network.tx(unit)
        except Exception as error:  # noqa: BLE001 - the refusal itself is compared
            return type(error).__name__
    by_rows = outcome(lambda tx: tx.session.execute(insert(table), [row]))
    network.tx(lambda tx: tx.session.execute(text("DELETE FROM expiry_reminders")))
    by_set = outcome(lambda tx: bulk.insert_rows(tx, table, [row]))
    assert by_set == by_rows and by_set != [row["id"][:40]], (by_rows, by_set)


def test_a_json_column_is_refused(network):
    from sqlalchemy import JSON, Column, MetaData, String, Table

    table = Table("bulk_json", MetaData(), Column("id", String(10), primary_key=True), Column("body", JSON))
    with pytest.raises(TypeError, match="JSON"):
        network.tx(lambda tx: bulk.insert_rows(tx, table, [{"id": "a", "body": {"k": 1}}]))
