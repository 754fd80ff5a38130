"""A quote is refused exactly when, and with the code with which, the earn of the same body is refused:
a quote never promises points an earn would not post (docs/partner-integration.md, `POST /v1/earn/quote`)."""

import pytest

from shared.alerts import list_alerts
from shared.errors import PointsnetError
from shared.ledger.events import Event
from shared.ledger.posting import quote_earn
from shared.partners.lifecycle import set_status, terminate
from shared.partners.limits import float_status, record_topup, set_limits
from shared.programme.merge import merge_members
from shared.rules.store import set_rules
from tests.db.test_history_plans import captured
from tests.factories import make_member, make_partner


def erase(network, partner, member):
    network.erase_member(member)
    return member


def merge_away(network, partner, member):
    survivor = make_member(network, partner)
    network.tx(lambda tx: merge_members(tx, survivor, member))
    return member


def suspend(network, partner, member):
    network.tx(lambda tx: set_status(tx, partner, "suspended"))
    return member


def end(network, partner, member):
    network.tx(lambda tx: terminate(tx, partner))
    return member


def suspend_and_erase(network, partner, member):
    return erase(network, partner, suspend(network, partner, member))


def another_partners(network, partner, member):
    return make_member(network, make_partner(network))


CASES = [
    ("an erased member", erase, "member_erased"),
    ("a member merged into another", merge_away, "unknown_member"),
    ("a suspended partner", suspend, "partner_suspended"),
    ("a terminated partner", end, "partner_terminated"),
    ("a suspended partner and an erased member: the partner first", suspend_and_erase, "partner_suspended"),
    ("a member of another partner", another_partners, "unknown_member"),
]


@pytest.mark.parametrize("name,arrange,code", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("body", [{"amount": 10_000}, {"points": 50}], ids=["by the rules", "explicit points"])
def test_a_quote_is_refused_as_the_earn_is(network, name, arrange, code, body):
    partner = make_partner(network)
    member = make_member(network, partner)
    network.tx(lambda tx: set_rules(tx, partner, "base_rate: 1"))
    assert network.tx(lambda tx: quote_earn(tx, partner, Event("earn", "q", member, **body)))["points"] > 0
    event = Event("earn", "after", arrange(network, partner, member), **body)
    with pytest.raises(PointsnetError) as refusal:
        network.tx(lambda tx: quote_earn(tx, partner, event), readonly=True)
    [outcome] = network.post(partner, [event])
    assert isinstance(outcome, PointsnetError), f"the earn posted {outcome['points']} points"
    assert refusal.value.code == outcome.code == code


# -- the refusals an earn meets once its partner and member pass: the quote runs the same checks -------

def quote_then_earn(network, partner, event) -> tuple[PointsnetError, PointsnetError]:
    """The refusals of the quote of ``event`` (read only, first, so it cannot count on what the earn
    writes) and of its earn; and the statements the quote sent: none writes or locks."""
    with captured(network, "") as sent:
        with pytest.raises(PointsnetError) as quote:
            network.tx(lambda tx: quote_earn(tx, partner, event), readonly=True)
    # (the day's first unit, a quote too, makes the day's settlement cycle row: not the quote's doing)
    writes = [s for s, _ in sent if (s.split()[0].upper() in ("INSERT", "UPDATE", "DELETE") or "FOR UPDATE" in s)
              and not s.startswith("INSERT INTO cycles ")]
    assert writes == [], "a quote writes nothing and takes no lock"
    [earn] = network.post(partner, [event])
    assert isinstance(earn, PointsnetError), f"the earn posted {earn['points']} points"
    return quote.value, earn


@pytest.mark.parametrize("body", [{"points": 10**12}, {"amount": 10**14}],
                         ids=["explicit points", "points the rules compute"])
def test_quote_refuses_points_whose_money_does_not_fit_as_the_earn_does(network, body):
    """10^12 points at 10 minor units each are 10^19 micro-units, beyond one 64-bit ledger amount:
    the earn refuses them as ``invalid_amount``, and so does their quote, whether the points are
    given or computed by the rules (10^14 minor units at 1 point per unit of currency)."""
    partner = make_partner(network, point_value="10")
    member = make_member(network, partner)
    network.tx(lambda tx: set_rules(tx, partner, "base_rate: 1"))
    fits = network.tx(lambda tx: quote_earn(tx, partner, Event("earn", "q", member, points=10**11)), readonly=True)
    assert fits["points"] == 10**11
    quote, earn = quote_then_earn(network, partner, Event("earn", "big", member, **body))
    assert quote.code == earn.code == "invalid_amount"
    assert str(quote) == str(earn)  # the same advice: how many points fit at a time


def test_quote_refuses_a_purchase_that_earns_nothing_as_the_earn_does(network):
    """A purchase the rules give no points is ``nothing_to_earn`` for its quote as for its earn, with
    the same breakdown (a quote of 0 points would promise an earn that cannot post)."""
    partner = make_partner(network, base_rate="0")
    member = make_member(network, partner)
    network.tx(lambda tx: set_rules(tx, partner, "base_rate: 0"))
    quote, earn = quote_then_earn(network, partner, Event("earn", "nothing", member, amount=100))
    assert quote.code == earn.code == "nothing_to_earn"
    assert quote.to_problem()["breakdown"] == earn.to_problem()["breakdown"]


@pytest.mark.parametrize("body,over", [({"points": 41}, True), ({"points": 40}, False),
                                       ({"amount": 4_100}, True), ({"amount": 4_000}, False)],
                         ids=["explicit points over", "explicit points up to", "by the rules over",
                              "by the rules up to"])
def test_quote_refuses_an_earn_over_the_members_daily_limit_as_the_earn_does(network, body, over):
    """With a network limit of 100 points a member earns a day, and 60 earned today, a quote for more
    than the 40 left is ``velocity_limit_exceeded`` with the earn's figures, and raises no operator
    alert (a quote writes nothing; the earn does); a quote within it answers the points."""
    network.tx(lambda tx: set_rules(tx, "network", "limits:\n  member_daily_earn: 100\n"))
    partner = make_partner(network)
    member = make_member(network, partner)
    network.tx(lambda tx: set_rules(tx, partner, "base_rate: 1"))
    network.earn(partner, member, "first", points=60)
    event = Event("earn", "over", member, **body)
    if not over:
        assert network.tx(lambda tx: quote_earn(tx, partner, event), readonly=True)["points"] == 40
        assert network.earn(partner, member, "over", **body)["points"] == 40
        return
    quote, earn = quote_then_earn(network, partner, event)
    assert quote.code == earn.code == "velocity_limit_exceeded"
    assert quote.to_problem() == earn.to_problem()
    assert quote.to_problem()["limit_name"] == "member_daily_earn" and quote.to_problem()["used"] == 60
    assert [a["count"] for a in network.tx(list_alerts, readonly=True) if a["kind"] == "velocity_limit"] == [1]


def test_quote_refuses_an_issuance_over_the_partners_daily_cap_reading_its_counter_without_a_lock(network, clock):
    """A partner's daily issuance cap refuses a quote as it refuses the earn: before the day's counter
    row exists (points issued before the cap came into force count) and once an earn made it. The
    quote neither makes the row nor locks it (it would make the quote wait for every capped earn of
    the partner)."""
    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "uncapped", points=60)
    clock.advance(minutes=1)
    network.tx(lambda tx: set_rules(tx, partner, "limits: {partner_daily_issuance: 100}\n"))
    quote, earn = quote_then_earn(network, partner, Event("earn", "over", member, points=41))
    assert quote.code == earn.code == "velocity_limit_exceeded"
    assert quote.to_problem() == earn.to_problem()
    assert quote.to_problem()["limit_name"] == "partner_daily_issuance" and quote.to_problem()["used"] == 60
    network.earn(partner, member, "capped", points=30)  # makes the counter row (60) and counts 30 in it
    quote, earn = quote_then_earn(network, partner, Event("earn", "over again", member, points=11))
    assert quote.code == earn.code == "velocity_limit_exceeded" and quote.to_problem()["used"] == 90
    fits = network.tx(lambda tx: quote_earn(tx, partner, Event("earn", "q", member, points=10)), readonly=True)
    assert fits["points"] == 10


def test_quote_refuses_an_issuance_the_prepaid_float_cannot_cover_as_the_earn_does(network):
    """A prepaid partner whose float (with its overdraft) cannot fund the points is ``float_exhausted``
    for the quote as for the earn; the quote raises no alert and draws nothing."""
    partner = make_partner(network, billing="prepaid", point_value="1", issuance_fee="0", redemption_fee_rate="0")
    network.tx(lambda tx: set_limits(tx, partner, float_overdraft_minor=0))
    network.tx(lambda tx: record_topup(tx, partner, 100, "BANK-1"))
    member = make_member(network, partner)
    assert network.tx(lambda tx: quote_earn(tx, partner, Event("earn", "q", member, points=100)),
                      readonly=True)["points"] == 100
    quote, earn = quote_then_earn(network, partner, Event("earn", "over", member, points=101))
    assert quote.code == earn.code == "float_exhausted"
    assert quote.to_problem() == earn.to_problem()
    assert [a["count"] for a in network.tx(list_alerts, readonly=True) if a["kind"] == "float_exhausted"] == [1]
    assert network.tx(lambda tx: float_status(tx, partner), readonly=True)["drawn_micro"] == 0
