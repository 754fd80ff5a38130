"""A partner syncing its ledger with ``GET /v1/transactions`` keeps the cursor it was given and resumes
from it later: no entry may commit behind a cursor already given out, whatever its ``posted_at``.

``posted_at`` is the network's time when a unit of work starts and an entry's id is made before it
commits, so an entry can commit after entries that sort after it on (posted_at, id): a partner that
had paged past them never got it. Each test collects every cursor handed out while such an entry is
on its way, lets it commit, and resumes from each cursor: the entry is there, and nothing twice.
"""

from __future__ import annotations

import threading

import pytest

from shared.db.database import Database
from shared.ledger.journal import Journal
from tests.partner_api.conftest import enrol


def sync(partner, cursor: str | None = None, limit: int = 1) -> tuple[list[str], list[str]]:
    """Every page from ``cursor`` to the last: the references listed, and each cursor given out."""
    references, given = [], []
    while True:
        page = partner.ok("GET", "/v1/transactions", params={"limit": limit, **({"cursor": cursor} if cursor else {})})
        references += [t["reference"] for t in page["transactions"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return references, given
        given.append(cursor)


def assert_every_cursor_resumes_with(partner, given: list[str], late: str) -> None:
    assert given, "no cursor was given out meanwhile: the test shows nothing"
    for cursor in given:
        resumed, _ = sync(partner, cursor, limit=2)
        assert late in resumed, (cursor, resumed)
        assert len(resumed) == len(set(resumed)), resumed


def test_an_entry_whose_unit_read_the_clock_first_is_listed_after_every_cursor_given_meanwhile(
        shop, network, clock, monkeypatch):
    """The late unit reads the network's time (its posted_at), then waits before it begins — on SQLite
    for its turn at the write lock, anywhere for the scheduler. Two earns posted a second later commit
    first and the partner pages past them; then the late one commits, with the earliest posted_at."""
    member = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "first", "points": 1})
    reached, go = threading.Event(), threading.Event()
    original = Database._turn

    def turn(self, readonly):  # called right after the unit read the clock, before its BEGIN
        if threading.current_thread().name == "late" and not readonly:
            reached.set()
            go.wait(10)
        return original(self, readonly)

    monkeypatch.setattr(Database, "_turn", turn)
    late = threading.Thread(target=network.earn, args=(shop.partner_id, member, "late"), kwargs={"points": 1},
                            name="late", daemon=True)
    late.start()
    assert reached.wait(10)
    clock.advance(seconds=1)
    for reference in ("fast", "fast2"):
        shop.ok("POST", "/v1/earn", {"member_id": member, "reference": reference, "points": 1})
    listed, given = sync(shop)
    assert listed == ["first", "fast", "fast2"]
    go.set()
    late.join(10)
    assert not late.is_alive()
    everything, _ = sync(shop, limit=100)
    assert sorted(everything) == ["fast", "fast2", "first", "late"]
    assert_every_cursor_resumes_with(shop, given, "late")


@pytest.mark.postgres
def test_an_entry_written_but_not_committed_holds_back_what_committed_after_it(shop, network, monkeypatch):
    """PostgreSQL, many writers: "slow" has written its entry and not committed; "fast" and "fast2"
    commit meanwhile. The list gives out nothing after "slow" until it ends (every transaction before
    an entry listed has finished), so every cursor given out meanwhile resumes with "slow"."""
    member, other = enrol(shop), enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": member, "reference": "seed", "points": 10})
    shop.ok("POST", "/v1/earn", {"member_id": other, "reference": "seed2", "points": 10})
    reached, go = threading.Event(), threading.Event()
    original = Journal.flush

    def flush(self):
        original(self)
        if any(entry.get("reference") == "slow" for entry in self.entries):
            reached.set()
            go.wait(10)

    monkeypatch.setattr(Journal, "flush", flush)
    slow = threading.Thread(target=network.earn, args=(shop.partner_id, member, "slow"), kwargs={"points": 1},
                            daemon=True)
    slow.start()
    assert reached.wait(10)
    for reference in ("fast", "fast2"):
        shop.ok("POST", "/v1/earn", {"member_id": other, "reference": reference, "points": 1})
    listed, given = sync(shop)
    assert listed == ["seed", "seed2"]  # "fast" and "fast2" wait for "slow"
    go.set()
    slow.join(10)
    assert not slow.is_alive()
    everything, _ = sync(shop, limit=100)
    assert everything == ["seed", "seed2", "slow", "fast", "fast2"]  # in the order their units wrote
    assert_every_cursor_resumes_with(shop, given, "slow")
    for cursor in given:
        assert sync(shop, cursor, limit=2)[0][-3:] == ["slow", "fast", "fast2"]
