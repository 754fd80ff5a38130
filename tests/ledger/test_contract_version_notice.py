"""A contract version added just before a cut-off never splits the next cycle's terms.

A version is added for the next cycle a moment before the current one ends; its unit commits a
moment after. The next cycle's first postings read the terms in force without a lock: on PostgreSQL
one that ran before that commit read the old version, one after it the new one, so the same cycle
was priced at two contracts. A version must therefore take effect at a cycle that starts at least
``CONTRACT_NOTICE`` after the unit's time: sooner is refused, the default is the cycle after.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from shared import errors
from shared.ledger.cycles import cycle_date_for, cycle_end
from shared.models import Lot
from shared.partners.contracts import CONTRACT_NOTICE, ContractTerms, add_contract_version
from tests.factories import make_member, make_partner, verify_ok
from tests.interleave import Pause, overlap


def _contract_of(network, earned: dict) -> str:
    lot_id = earned["lots"][0]["lot_id"]
    return network.tx(lambda tx: tx.session.execute(select(Lot.contract_id).where(Lot.id == lot_id)).scalar_one(),
                      readonly=True)


def test_a_version_added_a_moment_before_the_cut_off_never_splits_the_next_cycles_terms(network, clock):
    shop = make_partner(network, "Till", point_value="1")
    member = make_member(network, shop)
    today = cycle_date_for(clock.now(), network.settings)
    clock.set(cycle_end(today, network.settings) - timedelta(seconds=1))
    pause = Pause()

    def add_version(tx):
        try:
            return add_contract_version(tx, shop, ContractTerms(point_value="2"), today + timedelta(days=1))
        finally:
            pause()  # its unit still open as the cut-off passes

    def earn_after_the_cut_off():
        clock.advance(seconds=2)
        return network.earn(shop, member, "first", points=10)

    both = overlap(lambda: network.tx(add_version), earn_after_the_cut_off, pause)
    assert isinstance(both.second, dict), both.second
    later = network.earn(shop, member, "second", points=10)
    assert cycle_date_for(clock.now(), network.settings) == today + timedelta(days=1)
    assert _contract_of(network, both.second) == _contract_of(network, later), "two contracts in one cycle"
    assert isinstance(both.first, errors.ContractNotAtBoundary), both.first  # too late for tomorrow
    verify_ok(network)


def test_a_version_takes_effect_only_at_a_cycle_starting_at_least_the_notice_ahead(network, clock):
    shop = make_partner(network, "Till")
    today = cycle_date_for(clock.now(), network.settings)
    tomorrow = today + timedelta(days=1)
    end = cycle_end(today, network.settings)

    clock.set(end - CONTRACT_NOTICE)  # just within the notice: tomorrow is refused, naming why
    with pytest.raises(errors.ContractNotAtBoundary, match="at least"):
        network.tx(lambda tx: add_contract_version(tx, shop, ContractTerms(point_value="2"), tomorrow))
    # the default is then the cycle after tomorrow
    added = network.tx(lambda tx: add_contract_version(tx, shop, ContractTerms(point_value="2")))
    assert added["effective_from"] == (tomorrow + timedelta(days=1)).isoformat()

    other = make_partner(network, "Shop")
    clock.set(end - CONTRACT_NOTICE - timedelta(seconds=1))  # more than the notice ahead: tomorrow is fine
    added = network.tx(lambda tx: add_contract_version(tx, other, ContractTerms(point_value="2"), tomorrow))
    assert added["effective_from"] == tomorrow.isoformat()
    third = make_partner(network, "Third")
    default = network.tx(lambda tx: add_contract_version(tx, third, ContractTerms(point_value="3")))
    assert default["effective_from"] == tomorrow.isoformat()
