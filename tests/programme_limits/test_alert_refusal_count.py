"""An alert's ``refused_events`` counts every refusal the alert covers, not the latest unit's only:
the units that fold into an open alert add their refusals to it; an acknowledged alert keeps its
count and the next refusal opens a new one that counts from 1."""

from __future__ import annotations

from shared.alerts import acknowledge, list_alerts
from shared.ledger.events import Event
from tests.factories import make_member, make_partner
from tests.programme_limits.conftest import alerts


def test_refused_events_add_up_over_the_units_an_alert_covers(network, limits):
    limits(member_daily_earn=100)
    partner = make_partner(network)
    member = make_member(network, partner)
    # one unit with two refusals, then two units with one each: one open alert, 4 refusals
    network.post(partner, [Event("earn", "a-1", member, points=101), Event("earn", "a-2", member, points=150)])
    network.post(partner, [Event("earn", "b-1", member, points=101)])
    network.post(partner, [Event("earn", "c-1", member, points=200)])
    [alert] = alerts(network)
    assert alert["count"] == 3
    assert (alert["detail"]["refused_events"], alert["detail"]["asked"]) == (4, 200)  # the detail: the latest

    network.tx(lambda tx: acknowledge(tx, alert["id"]))
    network.post(partner, [Event("earn", "d-1", member, points=300)])
    [fresh] = alerts(network)
    assert fresh["id"] != alert["id"] and (fresh["count"], fresh["detail"]["refused_events"]) == (1, 1)
    [kept] = [a for a in network.tx(lambda tx: list_alerts(tx, include_acknowledged=True), readonly=True)
              if a["id"] == alert["id"]]
    assert kept["detail"]["refused_events"] == 4


def test_a_partner_cap_alert_counts_refusals_of_every_unit(network):
    from tests.programme_limits.conftest import rules

    partner = make_partner(network)
    rules(network, partner, "limits: {partner_daily_issuance: 100}\n")
    first, second = make_member(network, partner), make_member(network, partner)
    network.post(partner, [Event("earn", "e-1", first, points=101), Event("earn", "e-2", second, points=102)])
    network.post(partner, [Event("earn", "e-3", second, points=103)])
    [alert] = alerts(network)
    assert (alert["count"], alert["detail"]["refused_events"], alert["detail"]["last_member_id"]) == (2, 3, second)
