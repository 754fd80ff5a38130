"""The engine's limit counting against a model: every earn and burn is accepted exactly when it fits."""

from hypothesis import HealthCheck, given, settings, strategies as st

from shared.errors import VelocityLimitExceeded
from shared.ledger.events import Event
from tests.factories import make_member, make_partner

EARN_LIMIT, BURN_LIMIT = 1000, 300
operations = st.lists(st.tuples(st.sampled_from(["earn", "burn"]), st.integers(1, 400)), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(operations, min_size=1, max_size=3))
def test_each_event_is_accepted_exactly_when_it_fits_the_days_limits(network, limits, batches):
    limits(member_daily_earn=EARN_LIMIT, member_daily_burn=BURN_LIMIT)
    partner = make_partner(network)
    member = make_member(network, partner)
    earned = spent = balance = 0
    for number, batch in enumerate(batches):
        events = [Event(kind, f"{number}-{i}", member, points) for i, (kind, points) in enumerate(batch)]
        outcomes = network.post(partner, events)
        for (kind, points), outcome in zip(batch, outcomes):
            if kind == "earn":
                fits = earned + points <= EARN_LIMIT
                earned += points if fits else 0
                balance += points if fits else 0
            else:
                if points > balance:  # insufficient points comes first
                    assert outcome.code == "insufficient_points"
                    continue
                fits = spent + points <= BURN_LIMIT
                spent += points if fits else 0
                balance -= points if fits else 0
            assert isinstance(outcome, dict) if fits else isinstance(outcome, VelocityLimitExceeded), (
                kind, points, earned, spent, outcome)
    assert network.balance(member)["available"] == balance
