"""Maker-checker: a guarded action waits for a second operator and then runs exactly once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from services.dashboard import actions
from shared.access import audit, users
from shared.access.sessions import Session
from shared.errors import Conflict
from shared.models import AuditEntry, PendingAction
from tests.dashboard.conftest import BASE, post_form


@pytest.fixture
def counter(monkeypatch, network):
    """A test action that counts its runs (refusing when asked to), guarded by four eyes."""
    runs = []

    def run(tx, _network, params):
        if params.get("refuse"):
            raise Conflict("refused by the ledger")
        runs.append(params["n"])
        return {"runs": len(runs)}

    monkeypatch.setitem(actions.ACTIONS, "test_count", actions.Action("test_count", run))
    network.settings.four_eyes_actions = frozenset({"test_count"})
    return runs


def session_of(network, email) -> Session:
    user = network.tx(lambda tx: users.find_user(tx, email), readonly=True)
    return Session("-", "-", user.id, user.email, user.role, user.partner_id, "en")


def pending(network) -> list[PendingAction]:
    return network.tx(lambda tx: tx.session.scalars(select(PendingAction).order_by(PendingAction.id)).all(),
                      readonly=True)


def test_guarded_action_waits_for_a_second_operator_and_runs_once(network, staff, client_as, counter):
    maker = session_of(network, staff["operator"])
    submitted = actions.submit(network, maker, "test_count", "thing-1", {"n": 7})
    assert submitted.pending_id and submitted.outcome is None and counter == []

    own = post_form(client_as("operator"), f"{BASE}/approvals/{submitted.pending_id}/approve", page=f"{BASE}/approvals")
    assert own.status_code == 409 and 'data-code="four_eyes_required"' in own.text
    finance = post_form(client_as("finance"), f"{BASE}/approvals/{submitted.pending_id}/approve")
    assert finance.status_code == 403
    assert counter == []

    checker = client_as("checker")
    assert post_form(checker, f"{BASE}/approvals/{submitted.pending_id}/approve", page=f"{BASE}/approvals").status_code == 303
    again = post_form(checker, f"{BASE}/approvals/{submitted.pending_id}/approve", page=f"{BASE}/approvals")
    assert again.status_code == 409 and 'data-code="action_not_pending"' in again.text
    assert counter == [7]
    [row] = pending(network)
    assert row.status == "approved" and row.outcome == '{"runs": 1}'
    trail = network.tx(lambda tx: tx.session.execute(select(AuditEntry.user_email, AuditEntry.action)
                                                     .order_by(AuditEntry.id)).all(), readonly=True)
    assert [t for t in trail if not t[1].startswith("session.")] == [
        (staff["operator"], "approval.requested"), (staff["checker"], "approval.approved"),
        (staff["checker"], "test_count")]


def test_a_rejected_action_never_runs(network, staff, client_as, counter):
    submitted = actions.submit(network, session_of(network, staff["operator"]), "test_count", None, {"n": 1})
    assert post_form(client_as("checker"), f"{BASE}/approvals/{submitted.pending_id}/reject").status_code == 303
    assert counter == [] and pending(network)[0].status == "rejected"


def test_an_approved_action_the_ledger_refuses_is_marked_failed(network, staff, client_as, counter):
    submitted = actions.submit(network, session_of(network, staff["operator"]), "test_count", None,
                               {"n": 1, "refuse": True})
    answer = post_form(client_as("checker"), f"{BASE}/approvals/{submitted.pending_id}/approve")
    assert answer.status_code == 409 and "refused by the ledger" in answer.text
    [row] = pending(network)
    assert row.status == "failed" and "refused by the ledger" in row.outcome and counter == []


@pytest.mark.parametrize("pending_id", [2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**70])
@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_an_approval_id_no_row_can_have_is_not_pending(network, staff, client_as, counter, pending_id, decision):
    """pending_actions.id is a 32-bit integer (PostgreSQL; SQLite's is 64-bit): an id beyond it is an
    unknown action (409 action_not_pending), never the database's error (a 500)."""
    submitted = actions.submit(network, session_of(network, staff["operator"]), "test_count", None, {"n": 1})
    answer = post_form(client_as("checker"), f"{BASE}/approvals/{pending_id}/{decision}", page=f"{BASE}/approvals")
    assert answer.status_code == 409 and 'data-code="action_not_pending"' in answer.text, answer.status_code
    assert counter == [] and [row.status for row in pending(network)] == ["pending"]
    unknown = post_form(client_as("checker"), f"{BASE}/approvals/{submitted.pending_id + 1}/{decision}",
                        page=f"{BASE}/approvals")
    assert unknown.status_code == 409 and 'data-code="action_not_pending"' in unknown.text  # the same answer


def test_unguarded_actions_run_at_once_and_are_audited(network, staff, counter):
    network.settings.four_eyes_actions = frozenset()
    done = actions.submit(network, session_of(network, staff["operator"]), "test_count", "x", {"n": 3})
    assert done.outcome == {"runs": 1} and counter == [3] and pending(network) == []
    assert network.tx(lambda tx: tx.session.scalar(select(AuditEntry.action).where(AuditEntry.action == "test_count")),
                      readonly=True) == "test_count"


def test_only_permitted_roles_may_submit(network, staff, counter):
    from shared.access.errors import Forbidden

    with pytest.raises(Forbidden):
        actions.submit(network, session_of(network, staff["finance"]), "test_count", None, {"n": 1})


def test_the_database_refuses_a_self_approval(network, staff, counter):
    maker = session_of(network, staff["operator"])
    pending_id = actions.submit(network, maker, "test_count", None, {"n": 1}).pending_id
    with pytest.raises(IntegrityError):
        network.tx(lambda tx: tx.session.execute(update(PendingAction).where(PendingAction.id == pending_id)
                                                 .values(status="approved", decided_by=maker.user_id)))


def test_four_eyes_configuration_is_validated():
    from pydantic import ValidationError

    from shared.config import Settings

    assert Settings(four_eyes_actions="member_adjustment, settlement_paid").four_eyes_actions == {
        "member_adjustment", "settlement_paid"}
    assert Settings(four_eyes_actions="none").four_eyes_actions == frozenset()
    with pytest.raises(ValidationError):
        Settings(four_eyes_actions="member_adjustment,launch_rockets")


@pytest.mark.parametrize("empty", ["", " ", ",", " , "])
def test_an_empty_four_eyes_setting_is_refused_not_read_as_none(empty, monkeypatch):
    """Only ``none`` switches maker-checker off: an empty variable (a deployment template's unset
    default, ``POINTSNET_FOUR_EYES_ACTIONS=${X:-}``) is a mistake to refuse, not a silent switch-off."""
    from pydantic import ValidationError

    from shared.config import Settings

    with pytest.raises(ValidationError, match="say none"):
        Settings(four_eyes_actions=empty)
    monkeypatch.setenv("POINTSNET_FOUR_EYES_ACTIONS", empty)
    with pytest.raises(ValidationError, match="say none"):
        Settings()


def test_a_failed_approval_never_marks_a_request_another_approval_ran(network, staff, monkeypatch):
    """One tab's approval is refused and rolls back; before it marks the request failed, a second tab's
    approval takes the request and runs it. The request stays approved (the action ran), not failed."""
    runs, b_runs, release, a_rolled_back = [], threading.Event(), threading.Event(), threading.Event()

    def run(tx, _network, params):
        if threading.current_thread().name == "first":
            raise Conflict("refused this time")
        runs.append(params["n"])
        b_runs.set()
        release.wait(10)  # the second approval holds its transaction open
        return {"runs": len(runs)}

    monkeypatch.setitem(actions.ACTIONS, "test_count", actions.Action("test_count", run))
    network.settings.four_eyes_actions = frozenset({"test_count"})
    pending_id = actions.submit(network, session_of(network, staff["operator"]), "test_count", None, {"n": 5}).pending_id
    checker = session_of(network, staff["checker"])
    tx = network.tx

    def paced_tx(fn, **kwargs):  # the first tab marks its failure only once the second runs the action
        if threading.current_thread().name == "first" and fn.__name__ == "failed":
            a_rolled_back.set()
            assert b_runs.wait(10)
        return tx(fn, **kwargs)

    monkeypatch.setattr(network, "tx", paced_tx)
    outcomes = {}

    def decide(name):
        try:
            outcomes[name] = actions.decide(network, checker, pending_id, approve=True)
        except Conflict as refused:
            outcomes[name] = refused

    first = threading.Thread(target=decide, args=("first",), name="first", daemon=True)
    first.start()
    assert a_rolled_back.wait(10)
    second = threading.Thread(target=decide, args=("second",), name="second", daemon=True)
    second.start()
    assert b_runs.wait(10)
    first.join(1.0)
    release.set()
    first.join(10)
    second.join(10)
    assert not first.is_alive() and not second.is_alive()
    assert isinstance(outcomes["first"], Conflict) and outcomes["second"] == {"runs": 1}
    [row] = pending(network)
    assert row.status == "approved" and runs == [5]


def test_an_approved_action_that_breaks_unexpectedly_is_marked_failed_and_changes_nothing(
        network, staff, client_as, monkeypatch, caplog):
    """An action that fails with something other than a refusal (a bug, a database error): its work
    rolls back with the approval, the request is marked failed with a generic reason (the error itself
    goes to the log, not to the page or the audit log), and the checker gets a clear page, not a 500.
    The request is decided: approving it again is refused, so it never runs twice."""
    runs, someone = [], session_of(network, staff["checker"])

    def run(tx, _network, params):
        audit.record(tx, someone, "test.work_done", None)  # work that must roll back
        runs.append(params["n"])
        raise RuntimeError("secret internals")

    monkeypatch.setitem(actions.ACTIONS, "test_break", actions.Action("test_break", run))
    network.settings.four_eyes_actions = frozenset({"test_break"})
    pending_id = actions.submit(network, session_of(network, staff["operator"]), "test_break", "thing-1",
                                {"n": 1}).pending_id
    checker = client_as("checker")
    checker._transport.raise_server_exceptions = False
    with caplog.at_level("ERROR", logger="pointsnet.dashboard"):
        answer = post_form(checker, f"{BASE}/approvals/{pending_id}/approve", page=f"{BASE}/approvals")
    assert answer.status_code == 409 and 'data-code="action_failed"' in answer.text, answer.status_code
    assert "secret internals" not in answer.text
    assert "secret internals" in caplog.text  # the error itself is logged
    [row] = pending(network)
    assert row.status == "failed" and "action_failed" in row.outcome and "secret internals" not in row.outcome
    trail = network.tx(lambda tx: tx.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all(),
                       readonly=True)
    assert "test.work_done" not in trail and "approval.failed" in trail and "approval.approved" not in trail
    again = post_form(checker, f"{BASE}/approvals/{pending_id}/approve", page=f"{BASE}/approvals")
    assert again.status_code == 409 and 'data-code="action_not_pending"' in again.text
    assert runs == [1]


def test_the_same_request_is_not_filed_twice_while_the_first_is_pending(network, staff, counter):
    """Filed twice (a double click, a second operator filing the same thing), one approval ran the
    action and the other ran it again — or waited in the list as a trap for the checker."""
    maker, other = session_of(network, staff["operator"]), session_of(network, staff["checker"])
    first = actions.submit(network, maker, "test_count", "thing-1", {"n": 7}).pending_id
    for who in (maker, other):
        with pytest.raises(Conflict) as refused:
            actions.submit(network, who, "test_count", "thing-1", {"n": 7})
        assert refused.value.code == "approval_already_pending" and f"#{first}" in refused.value.detail
    assert [row.id for row in pending(network)] == [first]
    # another request is not the same one: another target or other parameters
    actions.submit(network, maker, "test_count", "thing-2", {"n": 7})
    actions.submit(network, maker, "test_count", "thing-1", {"n": 8})
    # once the first is decided, the same request may be filed again
    actions.decide(network, other, first, approve=False)
    assert actions.submit(network, maker, "test_count", "thing-1", {"n": 7}).pending_id
    assert len(pending(network)) == 4 and counter == []


def test_a_duplicate_request_from_the_dashboard_answers_a_clear_refusal(network, staff, partners, client_as):
    network.settings.four_eyes_actions = frozenset({"partner_suspension"})
    client = client_as("operator")
    path = f"{BASE}/partners/{partners['CoffeeCo']}/status"
    assert post_form(client, path, {"status": "suspended"}).status_code == 303
    again = post_form(client_as("checker"), path, {"status": "suspended"})
    assert again.status_code == 409 and 'data-code="approval_already_pending"' in again.text, again.text
    assert "already waiting for a second operator" in again.text
    assert [row.action for row in pending(network)] == ["partner_suspension"]
