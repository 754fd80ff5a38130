"""The status pass writes only the members it locked: one merged or erased after the pass read its id
(before the pass's locks) keeps its status, and no history row or event is made for it."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select, text, update

from shared.models import Member, MemberStatusHistory
from shared.programme import status
from tests.factories import make_member, make_partner

members_t = Member.__table__


def statuses(network):
    return dict(network.tx(lambda tx: tx.session.execute(select(Member.id, Member.activity_status)).all(),
                           readonly=True))


def recorded(network):
    return network.tx(lambda tx: sorted(tx.session.execute(select(MemberStatusHistory.member_id)).scalars()),
                      readonly=True)


def test_a_member_merged_or_erased_after_the_pass_read_its_id_is_left_alone(network, clock, monkeypatch):
    partner = make_partner(network)
    quiet, merged, erased, survivor = sorted(make_member(network, partner) for _ in range(4))
    clock.advance(days=90)  # every one of them at risk now
    real = status.lock_members

    def a_merge_and_an_erasure_commit_first(tx, ids):
        # what a merge and an erasure that commit between the read of the ids and the locks leave behind
        assert {merged, erased} <= set(ids)
        tx.session.execute(update(members_t).where(members_t.c.id == merged).values(merged_into=survivor))
        tx.session.execute(update(members_t).where(members_t.c.id == erased).values(status="erased"))
        return real(tx, ids)

    monkeypatch.setattr(status, "lock_members", a_merge_and_an_erasure_commit_first)
    assert network.tx(lambda tx: status.recompute_batch(tx, "", 100)) == (survivor, 2)
    found = statuses(network)
    assert (found[quiet], found[survivor], found[merged], found[erased]) == ("at_risk", "at_risk", "active", "active")
    assert recorded(network) == sorted([quiet, survivor])


@pytest.mark.postgres  # SQLite has one writer: no erasure can commit while the pass runs
def test_an_erasure_that_commits_while_the_pass_waits_for_its_lock_is_seen(network, clock):
    """A real erasure holding the member's row lock when the pass reads the ids: the pass waits for it,
    and once it commits the pass's lock finds the member erased and writes nothing for it."""
    partner = make_partner(network)
    quiet, erased = sorted(make_member(network, partner) for _ in range(2))
    clock.advance(days=90)
    outcome: dict = {}
    with network.db.engine.connect() as eraser:
        eraser.execute(update(members_t).where(members_t.c.id == erased).values(status="erased"))  # not committed
        pid = eraser.execute(text("SELECT pg_backend_pid()")).scalar_one()
        runner = threading.Thread(target=lambda: outcome.setdefault(
            "batch", network.tx(lambda tx: status.recompute_batch(tx, "", 100))))
        runner.start()
        deadline = time.monotonic() + 60  # a loaded machine (CI's workers) can take seconds to start the pass
        with network.db.engine.connect() as watcher:  # until the pass waits for the eraser's row lock
            while not watcher.execute(text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY("
                                           "pg_blocking_pids(pid))"), {"pid": pid}).scalar_one():
                assert runner.is_alive(), f"the pass ended without waiting for the lock: {outcome}"
                assert time.monotonic() < deadline, "the pass did not wait for the lock within 60 s"
                # pg_stat_activity is read once per transaction and kept until it ends: without this, a pass
                # whose connection opened after the first look was never seen (a fresh-clone CI run on a slow
                # machine failed so, 2026-12-07)
                watcher.rollback()
                time.sleep(0.02)
        eraser.commit()
    runner.join(timeout=30)
    assert outcome["batch"] == (erased, 1)
    found = statuses(network)
    assert (found[quiet], found[erased]) == ("at_risk", "active")
    assert recorded(network) == [quiet]
