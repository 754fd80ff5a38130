"""An approved action that meets a database error that outlasts the unit's retries — a lost
connection, a statement or lock timeout, a conflict retried to the end — is not marked failed: the
approval rolls back with the action, the request still waits, and approving it again once the database
answers runs it (once). A fault of the network's own (a bug) is still marked failed."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from services.dashboard import actions
from shared.models import AuditEntry
from tests.dashboard.conftest import BASE, post_form
from tests.dashboard.test_approvals import pending, session_of


class _DriverError(Exception):
    def __init__(self, message: str, sqlstate: str | None = None):
        super().__init__(message)
        self.sqlstate = sqlstate


TRANSIENT = {
    "connection lost": lambda: OperationalError("UPDATE members", {}, _DriverError(
        "server closed the connection unexpectedly", "08006")),
    "statement timeout": lambda: OperationalError("UPDATE members", {}, _DriverError(
        "canceling statement due to statement timeout", "57014")),
    "lock timeout": lambda: OperationalError("UPDATE members", {}, _DriverError(
        "canceling statement due to lock timeout", "55P03")),
    "still locked after the retries": lambda: OperationalError("UPDATE members", {}, _DriverError(
        "database is locked")),
}


@pytest.mark.parametrize("error", sorted(TRANSIENT))
def test_an_approval_that_meets_a_transient_database_error_stays_pending_and_runs_when_approved_again(
        network, staff, client_as, monkeypatch, error):
    runs, database_down = [], [True]

    def run(tx, _network, params):
        if database_down[0]:
            raise TRANSIENT[error]()
        runs.append(params["n"])
        return {"runs": len(runs)}

    monkeypatch.setitem(actions.ACTIONS, "test_db", actions.Action("test_db", run))
    network.settings.four_eyes_actions = frozenset({"test_db"})
    pending_id = actions.submit(network, session_of(network, staff["operator"]), "test_db", "thing-1",
                                {"n": 1}).pending_id
    checker = client_as("checker")
    checker._transport.raise_server_exceptions = False
    answer = post_form(checker, f"{BASE}/approvals/{pending_id}/approve", page=f"{BASE}/approvals")
    assert answer.status_code == 503 and 'data-code="action_not_run"' in answer.text, answer.status_code
    assert "still waiting" in answer.text
    [row] = pending(network)
    assert row.status == "pending" and row.decided_by is None and runs == []
    trail = network.tx(lambda tx: tx.session.scalars(select(AuditEntry.action)).all(), readonly=True)
    assert "approval.failed" not in trail and "approval.approved" not in trail

    database_down[0] = False  # the database answers again: the same approval, once more
    again = post_form(checker, f"{BASE}/approvals/{pending_id}/approve", page=f"{BASE}/approvals")
    assert again.status_code in (200, 303), again.text[-400:]
    [row] = pending(network)
    assert row.status == "approved" and runs == [1]


def _waiting_action(network, staff, monkeypatch) -> tuple[list, int, object]:
    """An action under four eyes that counts its runs, filed and waiting: (runs, its id, the checker)."""
    runs = []

    def run(tx, _network, params):
        runs.append(params["n"])
        return {"runs": len(runs)}

    monkeypatch.setitem(actions.ACTIONS, "test_db", actions.Action("test_db", run))
    network.settings.four_eyes_actions = frozenset({"test_db"})
    pending_id = actions.submit(network, session_of(network, staff["operator"]), "test_db", "thing-1",
                                {"n": 1}).pending_id
    return runs, pending_id, session_of(network, staff["checker"])

def test_an_approval_whose_commit_answer_was_lost_answers_what_ran(network, staff, monkeypatch):
    """The COMMIT reached the database but its answer was lost (the connection dropped): the action ran
    once and the request is approved, so the checker is given its outcome, not "nothing changed"; an
    approval once more is refused (it runs once). Found in review."""
    from shared.access.errors import NotPending

    runs, pending_id, checker = _waiting_action(network, staff, monkeypatch)
    real_tx, lose = network.tx, [True]

    def tx(fn, **kwargs):
        result = real_tx(fn, **kwargs)  # committed
        if lose[0] and not kwargs.get("readonly"):
            lose[0] = False
            raise OperationalError("COMMIT", {}, _DriverError("server closed the connection unexpectedly", "08006"))
        return result

    monkeypatch.setattr(network, "tx", tx)
    assert actions.decide(network, checker, pending_id, approve=True) == {"runs": 1}
    monkeypatch.setattr(network, "tx", real_tx)
    with pytest.raises(NotPending):
        actions.decide(network, checker, pending_id, approve=True)
    [row] = pending(network)
    assert row.status == "approved" and runs == [1]


def test_an_approval_whose_database_stays_silent_does_not_claim_nothing_changed(network, staff, monkeypatch):
    """The database answers neither the approval nor the read after it: whether the action ran is not
    known, and the page says so instead of "nothing changed"."""
    runs, pending_id, checker = _waiting_action(network, staff, monkeypatch)

    def down(fn, **kwargs):
        raise OperationalError("SELECT 1", {}, _DriverError("connection refused", "08001"))

    monkeypatch.setattr(network, "tx", down)
    with pytest.raises(actions.ActionNotRun) as raised:
        actions.decide(network, checker, pending_id, approve=True)
    assert "not known" in raised.value.detail and "nothing changed" not in raised.value.detail
