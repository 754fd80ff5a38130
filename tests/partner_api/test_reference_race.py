"""Two requests racing for one reference: the loser is 409 reference_conflict, never a 500.

The journal writes a single request's rows through psycopg's pipeline on the driver's own
connection, so PostgreSQL's refusal of the duplicate reference arrived as a raw psycopg error,
which the unit of work did not recognise as a unique violation (nor a deadlock as retryable):
the partner got a 500 instead of the retry that finds the stored entry.
"""

from __future__ import annotations

import threading

import psycopg.errors
import pytest

from shared.db.database import is_retryable, is_unique_violation
from tests.partner_api.conftest import assert_problem, enrol


def test_raw_driver_errors_are_classified_like_wrapped_ones():
    assert is_unique_violation(psycopg.errors.UniqueViolation("duplicate key"))
    assert is_retryable(psycopg.errors.DeadlockDetected("deadlock"))
    assert is_retryable(psycopg.errors.SerializationFailure("could not serialize"))
    assert not is_retryable(psycopg.errors.UniqueViolation("duplicate key"))
    assert not is_unique_violation(psycopg.errors.ForeignKeyViolation("no such member"))
    assert not is_unique_violation(ValueError("not a database error"))


@pytest.fixture
def member(shop) -> str:
    member_id = enrol(shop, phone="+8613812340000")
    shop.ok("POST", "/v1/earn", {"member_id": member_id, "reference": "seed", "points": 100})
    return member_id


@pytest.mark.postgres
def test_the_loser_of_a_race_for_one_reference_is_a_reference_conflict(shop, member, network, monkeypatch):
    """The first burn has written its entry (not committed) when the second, for another member under
    the same reference, writes its own: PostgreSQL makes the second wait, then refuses the duplicate."""
    from shared.ledger.journal import Journal

    other = enrol(shop)
    shop.ok("POST", "/v1/earn", {"member_id": other, "reference": "seed-other", "points": 100})
    release, reached = threading.Event(), threading.Event()
    original = Journal.flush

    def flush(self):
        original(self)
        if any(e.get("member_id") == member and e.get("reference") == "b-race" for e in self.entries):
            reached.set()
            release.wait(15)

    monkeypatch.setattr(Journal, "flush", flush)
    answers: dict[str, object] = {}
    first = threading.Thread(target=lambda: answers.setdefault("first", shop.call(
        "POST", "/v1/burn", {"member_id": member, "reference": "b-race", "points": 3})))
    first.start()
    assert reached.wait(15)
    second = threading.Thread(target=lambda: answers.setdefault("second", shop.call(
        "POST", "/v1/burn", {"member_id": other, "reference": "b-race", "points": 3})))
    second.start()
    second.join(1.5)  # it waits on the first's uncommitted entry
    release.set()
    first.join(15)
    second.join(15)
    assert answers["first"].status_code == 200, answers["first"].text
    assert_problem(answers["second"], 409, "reference_conflict")
    balance = shop.ok("GET", f"/v1/members/{other}")["balance"]
    assert balance["available"] == 100  # the refused burn took nothing
