"""Operator alerts survive the refusal that raised them and collapse per subject and day."""

import pytest

from shared.alerts import acknowledge, list_alerts, raise_alert
from shared.errors import PointsnetError
from tests.factories import make_partner


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
