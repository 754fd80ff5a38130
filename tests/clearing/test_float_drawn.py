"""What an enforced float has given is one kept number, not a sum over the partner's every line.

Each posting of a prepaid partner with an enforced float summed every ``prepaid_funding`` line the
partner ever paid (27 ms an earn at 100,000 earns). ``partner_limits.float_drawn_micro`` holds that
sum: set from the lines when the overdraft is first set, then added to by a trigger on
``obligation_lines`` (whoever writes the lines); ``pointsnet verify`` checks it.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select, update

from shared.ledger.events import Event
from shared.ledger.journal import Journal
from shared.ledger.verify import verify
from shared.models import ObligationLine, PartnerLimits
from shared.partners.limits import float_status, record_topup, set_limits
from tests.factories import make_member, make_partner, verify_ok
from tests.interleave import Pause, overlap

PREPAID = dict(billing="prepaid", point_value="1", issuance_fee="0", redemption_fee_rate="0")


def kept(network, partner) -> int | None:
    return network.tx(lambda tx: tx.session.execute(
        select(PartnerLimits.float_drawn_micro).where(PartnerLimits.partner_id == partner)).scalar_one_or_none(),
        readonly=True)


def lines(network, partner) -> int:
    return network.tx(lambda tx: int(tx.session.execute(
        select(func.coalesce(func.sum(ObligationLine.amount_micro), 0))
        .where(ObligationLine.payer == partner, ObligationLine.kind == "prepaid_funding")).scalar_one()),
        readonly=True)


def test_enforcing_a_float_sums_what_was_drawn_and_keeps_it(network):
    partner = make_partner(network, **PREPAID)
    member = make_member(network, partner)
    network.earn(partner, member, "before", points=30)  # no float enforced: nothing is kept
    assert kept(network, partner) is None
    network.tx(lambda tx: set_limits(tx, partner, exposure_limit_minor=5_000))
    assert kept(network, partner) is None  # other limits keep nothing
    network.tx(lambda tx: record_topup(tx, partner, 100, "BANK-1"))
    network.tx(lambda tx: set_limits(tx, partner, float_overdraft_minor=0))
    assert kept(network, partner) == lines(network, partner) == 30_000_000
    network.post(partner, [Event("earn", f"b-{n}", member, points=5) for n in range(4)])
    network.reverse(partner, "undo", "b-0")  # a negative line gives the float back
    assert kept(network, partner) == lines(network, partner) == 45_000_000
    status = network.tx(lambda tx: float_status(tx, partner), readonly=True)
    assert status["drawn_micro"] == 45_000_000 and status["headroom_micro"] == 55_000_000
    network.tx(lambda tx: set_limits(tx, partner, float_overdraft_minor=None))
    network.earn(partner, member, "after", points=5)  # no longer enforced: still kept
    assert kept(network, partner) == lines(network, partner) == 50_000_000
    verify_ok(network)


@pytest.mark.postgres
def test_the_database_adds_every_line_whoever_writes_it(network):
    """On PostgreSQL a trigger keeps the total (processes of the previous release write lines during a
    rolling upgrade); on SQLite the journal does, as the first test shows."""
    partner = make_partner(network, **PREPAID)
    member = make_member(network, partner)
    network.tx(lambda tx: record_topup(tx, partner, 100, "BANK-1"))
    network.tx(lambda tx: set_limits(tx, partner, float_overdraft_minor=0))
    earned = network.earn(partner, member, "one", points=10)
    line = network.tx(lambda tx: tx.session.execute(select(ObligationLine).where(
        ObligationLine.entry_id == earned["entry_id"], ObligationLine.kind == "prepaid_funding")).scalar_one(),
        readonly=True)
    copy = {column.name: getattr(line, column.key) for column in ObligationLine.__table__.columns}
    network.tx(lambda tx: tx.session.execute(insert(ObligationLine), [
        {**copy, "id": "obl_written_elsewhere", "amount_micro": 7}]))
    assert kept(network, partner) == lines(network, partner) == 10_000_007


def test_verify_finds_a_kept_float_that_does_not_match(network):
    partner = make_partner(network, **PREPAID)
    network.tx(lambda tx: set_limits(tx, partner, float_overdraft_minor=0))
    network.tx(lambda tx: tx.session.execute(update(PartnerLimits).values(float_drawn_micro=1)))
    report = network.tx(verify, readonly=True)
    assert [(o.check, o.subject) for o in report.offences] == [("float_drawn_matches_lines", partner)]


def test_enforcing_a_float_waits_for_the_postings_in_flight(network, monkeypatch):
    """The sum is taken only once the partner's postings in flight have committed (PostgreSQL: the
    partner's postings lock, taken exclusively; SQLite: the one writer), so it counts their lines."""
    partner = make_partner(network, **PREPAID)
    member = make_member(network, partner)
    network.tx(lambda tx: record_topup(tx, partner, 100, "BANK-1"))
    pause = Pause().after(monkeypatch, Journal, "flush")
    both = overlap(lambda: network.earn(partner, member, "in-flight", points=20),
                   lambda: network.tx(lambda tx: set_limits(tx, partner, float_overdraft_minor=0)), pause)
    assert both.second_waited and both.first["points"] == 20
    assert kept(network, partner) == lines(network, partner) == 20_000_000
    verify_ok(network)
