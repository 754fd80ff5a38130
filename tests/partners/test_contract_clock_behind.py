"""A contract version added on a host whose clock is behind (found by the host-clock-steps review): the
notice was judged by the adding host's clock alone, so with it two hours slow a version took effect from
a cycle other hosts had already posted into — one cycle, one partner, issuance lines under two
contracts, which the design forbids ("at a cycle boundary, never inside a cycle"). A cycle the ledger
has begun is never a version's first cycle, whoever's clock says so."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select

from shared.errors import ContractNotAtBoundary
from shared.models import Contract, ObligationLine
from shared.partners.contracts import ContractTerms, add_contract_version, first_effective_date
from tests.factories import make_member, make_partner, verify_ok

TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.01", redemption_fee_rate="0.05")


def test_a_version_added_behind_the_ledgers_clock_never_takes_effect_inside_a_begun_cycle(network, clock):
    shop = make_partner(network, "CoffeeCo", **TERMS)
    member = make_member(network, shop)
    clock.set(datetime(2026, 11, 20, 16, 30, tzinfo=timezone.utc))  # 00:30 on the 21st in Shanghai
    network.earn(shop, member, "e1", points=100)  # cycle 2026-11-21 has begun, under version 1
    clock.set(datetime(2026, 11, 20, 14, 30, tzinfo=timezone.utc))  # a host two hours slow: 22:30 on the 20th
    assert network.tx(first_effective_date, readonly=True) == date(2026, 11, 22)
    with pytest.raises(ContractNotAtBoundary, match="2026-11-21 has begun"):
        network.tx(lambda tx: add_contract_version(tx, shop, ContractTerms(**TERMS | {"issuance_fee": "0.05"}),
                                                   date(2026, 11, 21)))
    added = network.tx(lambda tx: add_contract_version(tx, shop, ContractTerms(**TERMS | {"issuance_fee": "0.05"})))
    assert added["effective_from"] == "2026-11-22", added
    clock.set(datetime(2026, 11, 20, 16, 40, tzinfo=timezone.utc))
    network.earn(shop, member, "e2", points=100)
    versions = network.tx(lambda tx: tx.session.execute(
        select(Contract.version).join(ObligationLine, ObligationLine.contract_id == Contract.id)
        .where(ObligationLine.cycle_date == date(2026, 11, 21)).distinct()).scalars().all(), readonly=True)
    assert versions == [1]
    verify_ok(network)
