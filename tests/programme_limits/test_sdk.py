"""The partner SDK awards activities and surfaces limit refusals at once (422 is not retried)."""

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.partners.keys import add_key
from shared.sdk import PointsnetAPIError, PointsnetClient
from shared.signing import public_key_pem
from tests.factories import make_partner
from tests.programme_limits.conftest import alerts, rules


def test_the_sdk_awards_activities_and_reports_a_velocity_refusal_once(network, api, limits):
    partner = make_partner(network)
    rules(network, partner, "activities: {survey: {points: 40}}\n")
    limits(member_daily_earn=100)
    key = Ed25519PrivateKey.generate()
    key_id = network.tx(lambda tx: add_key(tx, partner, public_key_pem(key.public_key()).decode()))["key_id"]
    client = PointsnetClient(api, key_id, key)
    try:
        member = client.enrol(phone="+8613812345670")["member_id"]
        assert client.activity(member, "survey", "s-1")["points"] == 40
        assert client.activity(member, "survey", "s-2")["balance"]["available"] == 80
        with pytest.raises(PointsnetAPIError) as refusal:
            client.activity(member, "survey", "s-3")
    finally:
        client.close()
    assert (refusal.value.status, refusal.value.code) == (422, "velocity_limit_exceeded")
    [alert] = alerts(network)
    assert alert["count"] == 1  # refused once, not retried
