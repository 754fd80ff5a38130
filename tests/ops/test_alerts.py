"""Operator alerts survive the refusal that raised them and collapse per subject and day; once
acknowledged, an alert stays as it was and the next occurrence opens a new one."""

import threading

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.alerts import acknowledge, list_alerts, raise_alert, record_alerts
from shared.errors import PointsnetError
from shared.models import Alert
from shared.partners.limits import check_exposure, set_limits
from tests.factories import make_member, make_partner


class Refused(PointsnetError):
    code = "test_refusal"
    status = 422


def test_an_alert_raised_by_a_refused_unit_is_recorded(network):
    partner = make_partner(network)

    def refused(tx):
        raise_alert(tx, "velocity_limit", partner_id=partner, limit=100, attempted=150)
        raise Refused("over the limit")

    with pytest.raises(Refused):
        network.tx(refused)
    [alert] = network.tx(list_alerts, readonly=True)
    assert (alert["kind"], alert["partner_id"], alert["count"]) == ("velocity_limit", partner, 1)
    assert alert["detail"] == {"limit": 100, "attempted": 150}


def test_repeated_alerts_collapse_into_one_row_per_day(network, clock):
    partner = make_partner(network)
    for attempted in (150, 160, 170):
        network.tx(lambda tx: raise_alert(tx, "float_exhausted", partner_id=partner, attempted=attempted))
    [alert] = network.tx(list_alerts, readonly=True)
    assert alert["count"] == 3 and alert["detail"] == {"attempted": 170}
    clock.advance(days=1)
    network.tx(lambda tx: raise_alert(tx, "float_exhausted", partner_id=partner, attempted=1))
    assert [a["count"] for a in network.tx(list_alerts, readonly=True)] == [1, 3]


def test_acknowledged_alerts_leave_the_open_list(network):
    network.tx(lambda tx: raise_alert(tx, "exposure_limit", partner_id=make_partner(network)))
    [alert] = network.tx(list_alerts, readonly=True)
    assert network.tx(lambda tx: acknowledge(tx, alert["id"]))
    assert not network.tx(lambda tx: acknowledge(tx, alert["id"]))
    assert network.tx(list_alerts, readonly=True) == []
    assert len(network.tx(lambda tx: list_alerts(tx, include_acknowledged=True), readonly=True)) == 1


def test_a_committed_unit_does_not_lose_its_alert(network):
    def unit(tx):
        raise_alert(tx, "exposure_limit", member_id="m-1")
        return "done"
    assert network.tx(unit) == "done"
    assert [a["member_id"] for a in network.tx(list_alerts, readonly=True)] == ["m-1"]


def open_alerts(network, kind):
    return [a for a in network.tx(list_alerts, readonly=True) if a["kind"] == kind]


def test_a_new_crossing_after_an_acknowledgement_is_shown(network, clock):
    """The reviewer's case (tests/_review_life/test_exposure_alerts.py): acknowledged, back under the
    limit, over it again the same network day."""
    issuer = make_partner(network, "Issuer", billing="postpaid", point_value="1")
    shop = make_partner(network, "Shop", billing="postpaid", point_value="1")
    member = make_member(network, issuer, also_linked_to=(shop,))
    network.tx(lambda tx: set_limits(tx, issuer, exposure_limit_minor=1_000))
    network.earn(issuer, member, "e1", points=1_100)
    network.tx(check_exposure)
    [first] = open_alerts(network, "exposure_limit_exceeded")
    assert network.tx(lambda tx: acknowledge(tx, first["id"]))  # finance has dealt with it
    network.burn(shop, member, "b1", 1_000)  # back to 100 points: ok
    clock.advance(hours=1)
    assert network.tx(check_exposure) == []
    network.earn(issuer, member, "e2", points=2_000)  # over the limit again: a new crossing
    clock.advance(hours=1)
    assert [e["state"] for e in network.tx(check_exposure)] == ["exceeded"]
    assert open_alerts(network, "exposure_limit_exceeded"), "the new crossing raised no visible alert"


def test_an_acknowledged_exposure_alert_stays_acknowledged_while_the_partner_stays_over(network, clock):
    """The hourly check re-finds a standing condition: once finance has acknowledged it, it stays
    acknowledged — the next hours and days too — until the condition clears and comes back. A worse
    state (near the limit, then over it) is a condition of its own and shows; coming back from over
    the limit to near it, a near alert acknowledged before does not reopen (the partner never went
    below the warning share). Each check that finds the condition renews the acknowledgement."""
    issuer = make_partner(network, "Issuer", billing="postpaid", point_value="1")
    shop = make_partner(network, "Shop", billing="postpaid", point_value="1")
    member = make_member(network, issuer, also_linked_to=(shop,))
    network.tx(lambda tx: set_limits(tx, issuer, exposure_limit_minor=1_000))

    def check() -> list[str]:
        clock.advance(hours=1)
        return [e["state"] for e in network.tx(check_exposure)]

    def shown() -> list[str]:
        return [a["kind"] for a in network.tx(list_alerts, readonly=True)]

    network.earn(issuer, member, "e1", points=900)  # 90%: near the limit
    assert check() == ["near"] and shown() == ["exposure_limit_near"]
    [near] = network.tx(list_alerts, readonly=True)
    assert network.tx(lambda tx: acknowledge(tx, near["id"]))
    assert check() == ["near"] and shown() == []
    for _hour in range(24):  # the hourly checks through the next network day, still near: still acknowledged
        assert check() == ["near"] and shown() == []
    network.earn(issuer, member, "e2", points=300)  # 1,200: over the limit, a worse condition
    assert check() == ["exceeded"] and shown() == ["exposure_limit_exceeded"]
    [over] = network.tx(list_alerts, readonly=True)
    assert network.tx(lambda tx: acknowledge(tx, over["id"]))
    assert check() == ["exceeded"] and shown() == []
    network.burn(shop, member, "b1", 250)  # 950: back to near, never below the warning share
    assert check() == ["near"] and shown() == []
    network.earn(issuer, member, "e3", points=100)  # 1,050: over again after it had cleared
    assert check() == ["exceeded"] and shown() == ["exposure_limit_exceeded"]
    network.burn(shop, member, "b2", 900)  # 150: ok; both conditions clear
    assert check() == [] and shown() == ["exposure_limit_exceeded"]  # the open one stays until acknowledged
    network.earn(issuer, member, "e4", points=700)  # 850: near again after it had cleared
    assert check() == ["near"] and sorted(shown()) == ["exposure_limit_exceeded", "exposure_limit_near"]


def test_an_acknowledged_alert_stays_as_it_was_and_the_next_occurrence_opens_a_new_one(network, clock):
    partner = make_partner(network)

    def exhausted(attempted):
        network.tx(lambda tx: raise_alert(tx, "float_exhausted", partner_id=partner, attempted=attempted))

    exhausted(150)
    exhausted(160)
    [acknowledged] = network.tx(list_alerts, readonly=True)
    assert network.tx(lambda tx: acknowledge(tx, acknowledged["id"]))
    clock.advance(hours=1)
    reopened_at = clock.now()
    exhausted(170)
    clock.advance(hours=1)
    exhausted(180)  # the same day: folded into the new open row, not into the acknowledged one
    [opened] = network.tx(list_alerts, readonly=True)
    assert opened["id"] != acknowledged["id"]
    assert (opened["count"], opened["detail"]) == (2, {"attempted": 180})
    assert (opened["first_at"], opened["last_at"]) == (reopened_at.isoformat(), clock.now().isoformat())
    everything = {a["id"]: a for a in network.tx(lambda tx: list_alerts(tx, include_acknowledged=True),
                                                 readonly=True)}
    assert everything.keys() == {acknowledged["id"], opened["id"]}
    kept = everything[acknowledged["id"]]
    assert kept["acknowledged_at"] is not None
    assert {k: kept[k] for k in ("count", "detail", "first_at", "last_at")} == \
        {k: acknowledged[k] for k in ("count", "detail", "first_at", "last_at")}
    # acknowledged again, then another occurrence: a third row; the two acknowledged ones stay apart
    assert network.tx(lambda tx: acknowledge(tx, opened["id"]))
    exhausted(190)
    [third] = network.tx(list_alerts, readonly=True)
    assert third["id"] not in everything and third["count"] == 1
    assert len(network.tx(lambda tx: list_alerts(tx, include_acknowledged=True), readonly=True)) == 3


def _record_in_thread(engine, now, alert, errors):
    def run():
        try:
            with Session(engine) as session, session.begin():
                record_alerts(session, now, "2026-11-20", [alert])
        except Exception as exc:  # reported to the test
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _wait_until_blocked(engine, thread):
    """Until the thread's statement waits for a lock (PostgreSQL), or it has finished."""
    import time

    from sqlalchemy import text

    deadline = time.monotonic() + 20
    while thread.is_alive() and time.monotonic() < deadline:
        with engine.connect() as connection:
            if connection.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                       "AND datname = current_database()")).scalar():
                return
        time.sleep(0.02)


@pytest.mark.postgres
def test_two_processes_recording_the_same_alert_at_once_make_one_open_row(network, clock):
    """The second waits for the first's row and adds to it: no unique violation, no second open row."""
    partner = make_partner(network)
    alert = {"kind": "float_exhausted", "partner_id": partner, "member_id": None, "detail": {"attempted": 1}}
    engine, errors = network.db.engine, []
    with Session(engine) as first, first.begin():
        record_alerts(first, clock.now(), "2026-11-20", [alert])
        second = _record_in_thread(engine, clock.now(), alert, errors)
        _wait_until_blocked(engine, second)
        assert second.is_alive(), "the second recording did not wait for the first"
    second.join(30)
    assert errors == []
    with Session(engine) as session:
        rows = session.execute(select(Alert.count, Alert.acknowledged_at)).all()
    assert [tuple(row) for row in rows] == [(2, None)]


@pytest.mark.postgres
def test_an_occurrence_recorded_while_its_alert_is_acknowledged_opens_a_new_row(network, clock):
    partner = make_partner(network)
    network.tx(lambda tx: raise_alert(tx, "float_exhausted", partner_id=partner, attempted=1))
    [alert] = network.tx(list_alerts, readonly=True)
    occurrence = {"kind": "float_exhausted", "partner_id": partner, "member_id": None, "detail": {"attempted": 2}}
    engine, errors = network.db.engine, []
    with Session(engine) as operator, operator.begin():
        acknowledged = operator.get(Alert, alert["id"])
        acknowledged.acknowledged_at = clock.now()
        operator.flush()
        recording = _record_in_thread(engine, clock.now(), occurrence, errors)
        _wait_until_blocked(engine, recording)
    recording.join(30)
    assert errors == []
    with Session(engine) as session:
        rows = session.execute(select(Alert.id, Alert.count, Alert.acknowledged_at.is_(None))
                               .order_by(Alert.id)).all()
    assert [(count, is_open) for _, count, is_open in rows] == [(1, False), (1, True)]


def test_an_acknowledgement_no_check_has_renewed_for_two_hours_holds_nothing_back(network, clock):
    """The checks stopped (a worker down for an afternoon), or the acknowledgement was made before
    acknowledgements held (an alert of an earlier release): the condition may have cleared and come
    back unseen, so the next check that finds it shows it again. An acknowledgement renewed by the
    hourly checks holds, however old."""
    issuer = make_partner(network, "Issuer", billing="postpaid", point_value="1")
    shop = make_partner(network, "Shop", billing="postpaid", point_value="1")
    member = make_member(network, issuer, also_linked_to=(shop,))
    network.tx(lambda tx: set_limits(tx, issuer, exposure_limit_minor=1_000))

    def check(hours: int = 1) -> list[str]:
        clock.advance(hours=hours)
        return [e["state"] for e in network.tx(check_exposure)]

    def shown() -> list[dict]:
        return network.tx(list_alerts, readonly=True)

    network.earn(issuer, member, "e1", points=1_100)
    assert check() == ["exceeded"]
    [first] = shown()
    assert network.tx(lambda tx: acknowledge(tx, first["id"]))
    assert check(hours=2) == ["exceeded"] and shown() == []  # two hours: the next check renews it
    assert check(hours=3) == ["exceeded"]  # three hours without a check: shown again
    [again] = shown()
    assert again["kind"] == "exposure_limit_exceeded" and again["id"] != first["id"]
    # an alert acknowledged weeks ago, before acknowledgements held, hides no new crossing
    assert network.tx(lambda tx: acknowledge(tx, again["id"]))
    network.burn(shop, member, "b1", 1_000)
    clock.advance(days=40)
    network.earn(issuer, member, "e2", points=2_000)
    assert check() == ["exceeded"] and [a["kind"] for a in shown()] == ["exposure_limit_exceeded"]
