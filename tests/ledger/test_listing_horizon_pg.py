"""PostgreSQL: the horizon of ``GET /v1/transactions`` is not held back by another database's
transactions on the same server, even by one that ends while the listing reads.

Another database's transaction can be running when a listing takes its snapshot and end before the
listing reads ``pg_stat_activity``: read in the listing's own statement, it was then no longer named
as another database's, counted as one that could still commit entries, and the horizon stopped at its
id, hiding entries the partner had posted (and seen answered) before it asked. Another database
writing short transactions without pause hit that in about 1 listing in 40; with ``other_writers``
read before the listing's transaction, never.
"""

from __future__ import annotations

import os
import threading

import psycopg
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from shared.db.database import normalise_url
from shared.ledger.queries import listing_horizon, other_writers

pytestmark = pytest.mark.postgres

ROUNDS = 1500


def _churn_in_another_database(url: str, stop: threading.Event, started: threading.Event) -> None:
    """Short write transactions, one after another, in the server's maintenance database: into a
    table of its own (a logged one: a temporary table's commits are too quick to show the race),
    dropped at the end."""
    other = make_url(normalise_url(url)).set(drivername="postgresql", database="postgres")
    table = f"pointsnet_test_churn_{os.getpid()}"
    with psycopg.connect(other.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (n int)")
        try:
            started.set()
            while not stop.is_set():
                with conn.transaction():
                    conn.execute(f"INSERT INTO {table} VALUES (1)")
        finally:
            conn.execute(f"DROP TABLE {table}")


def test_a_committed_transaction_is_below_the_next_listings_horizon_whatever_other_databases_do(
        network, database_url):
    stop, started = threading.Event(), threading.Event()
    churn = threading.Thread(target=_churn_in_another_database, args=(database_url, stop, started), daemon=True)
    churn.start()
    try:
        assert started.wait(10), "the other database's session did not start"
        hidden = []
        for _ in range(ROUNDS):
            # a write of ours commits (a transaction id, as an entry's xid), then a listing begins
            committed = network.tx(lambda tx: tx.session.execute(
                text("SELECT pg_current_xact_id()::text::bigint")).scalar_one())
            not_ours = network.tx(other_writers, readonly=True)
            horizon = network.tx(lambda tx: tx.session.execute(select(listing_horizon(not_ours))).scalar_one(),
                                 readonly=True)
            if not committed < horizon:
                hidden.append((committed, horizon))
    finally:
        stop.set()
        churn.join(10)
    assert hidden == []


def test_a_running_transaction_of_this_database_holds_the_horizon(network):
    """The other side: a transaction of ours that has written and not ended stops the horizon at its
    id, whatever was read as not ours."""
    holder = network.db.engine.connect()
    try:
        holder.begin()
        running = holder.execute(text("SELECT pg_current_xact_id()::text::bigint")).scalar_one()
        network.tx(lambda tx: tx.session.execute(text("SELECT pg_current_xact_id()")).scalar_one())  # one after
        not_ours = network.tx(other_writers, readonly=True)
        assert running % 2**32 not in not_ours
        horizon = network.tx(lambda tx: tx.session.execute(select(listing_horizon(not_ours))).scalar_one(),
                             readonly=True)
        assert horizon == running
    finally:
        holder.rollback()
        holder.close()
