"""An open ``cycles`` row before the network's first cycle never keeps a settlement from keeping its
ledger position (``cycle_positions``); a real open earlier cycle still does.

Such a row (an older merge, erasure or buy-out on a network without an entry left it; migration 0038
keeps one that a termination names, as a record) can gain no entry: entries join only the cycle of
the moment they are written, from the first cycle on. It is no cycle of the network
(``runs.of_the_network``), never settled and never closed, so it held back every later settlement's
kept position for ever, and each manifest counted the whole ledger again. The state is built in the
database directly, as no release can make it any more."""

from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import insert, select

from shared.models import Cycle, CyclePosition, Termination
from tests.clearing.test_ledger_position import counted, manifest_position
from tests.factories import make_member, make_partner, verify_ok

CYCLE = date(2026, 11, 20)  # the clock's first day: the network's first cycle
SECOND, THIRD = date(2026, 11, 21), date(2026, 11, 22)
STRAY = date(2026, 11, 17)
TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")


def kept_positions(network) -> list[date]:
    return network.tx(lambda tx: list(tx.session.execute(select(CyclePosition.cycle_date)
                                                         .order_by(CyclePosition.cycle_date)).scalars()), readonly=True)


def test_a_stray_open_cycle_a_termination_names_does_not_block_kept_positions(network, clock):
    coffee = make_partner(network, "CoffeeCo", **TERMS)
    bystander = make_partner(network, "BookMart", **TERMS)
    member = make_member(network, coffee)

    def older_release(tx):  # an open row before the first cycle, which a termination names
        tx.session.execute(insert(Cycle.__table__).values(cycle_date=STRAY, status="open"))
        tx.session.execute(insert(Termination.__table__).values(
            partner_id=bystander, final_cycle=STRAY, settlement="keep_paying",
            recorded_at=datetime(2026, 11, 17, tzinfo=timezone.utc)))
    network.tx(older_release)
    for day in range(3):
        network.earn(coffee, member, f"coffee-{day}", points=100)
        clock.advance(days=1)

    network.settle(CYCLE)
    assert kept_positions(network) == [CYCLE]  # the stray open row does not hold it back
    network.settle(THIRD)  # SECOND, a real cycle, is still open: THIRD keeps nothing yet
    assert kept_positions(network) == [CYCLE]
    network.settle(SECOND)
    assert kept_positions(network) == [CYCLE, SECOND]
    for cycle in (CYCLE, SECOND, THIRD):
        assert manifest_position(network, cycle) == counted(network, cycle), cycle
    stray = network.tx(lambda tx: tx.session.execute(select(Cycle.status).where(Cycle.cycle_date == STRAY))
                       .scalar_one(), readonly=True)
    assert stray == "open"  # the record stands, untouched
    verify_ok(network)
