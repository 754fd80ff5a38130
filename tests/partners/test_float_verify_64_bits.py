"""``pointsnet verify`` checks each enforced float's kept drawn total against its prepaid_funding lines
exactly, however large the lines' running sum grows on the way (the state of
test_float_sums_64_bits.py: 4 * 10^18 micro-units funded three times, one reversed, so the kept total
8 * 10^18 fits 64 bits but the lines pass 2^63 in order). SQLite's integer ``SUM`` fails there
("integer overflow"): verify must report the float consistent, and a kept total off by any amount,
however small or large, as an offence naming the exact sum of the lines."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from shared.ledger.verify import verify
from shared.models import PartnerLimits
from shared.partners.limits import set_limits
from tests.factories import make_member, make_partner
from tests.partners.test_float_sums_64_bits import FUNDING_MINOR, HUGE

DRAWN = 2 * FUNDING_MINOR * 10**6  # micro-units: the lines' exact sum


@pytest.fixture
def huge_float(network) -> str:
    coffee = make_partner(network, "CoffeeCo", **HUGE)
    member = make_member(network, coffee)
    for n in range(3):
        network.earn(coffee, member, f"coffee-{n}", points=4_000_000)
    network.reverse(coffee, "undo-2", "coffee-2")
    network.tx(lambda tx: set_limits(tx, coffee, float_overdraft_minor=0))  # enforced: the drawn total is kept
    return coffee


def float_offences(network) -> list[tuple[str, str]]:
    report = network.tx(verify, readonly=True)
    return [(o.subject, o.detail) for o in report.offences if o.check == "float_drawn_matches_lines"]


def keep(network, partner: str, drawn: int) -> None:
    network.tx(lambda tx: tx.session.execute(update(PartnerLimits).where(PartnerLimits.partner_id == partner)
                                             .values(float_drawn_micro=drawn)))


def test_verify_finds_a_float_whose_running_funding_passes_64_bits_consistent(network, huge_float):
    report = network.tx(verify, readonly=True)
    assert report.ok, [(o.check, o.subject, o.detail) for o in report.offences]


@pytest.mark.parametrize("off", [1, -1, 2**32, -(2**32), 2**32 + 1, 2**40 - 3, -DRAWN, 2**63 - 1 - DRAWN])
def test_verify_names_a_kept_total_off_by_any_amount_with_the_exact_sum(network, huge_float, off):
    keep(network, huge_float, DRAWN + off)
    assert float_offences(network) == [(huge_float, f"kept {DRAWN + off} lines {DRAWN}")]


@pytest.mark.parametrize("kept", [5, 2**32, 2**63 - 1])
def test_verify_names_a_kept_total_of_a_float_without_lines(network, kept):
    book = make_partner(network, "BookMart", **HUGE)
    network.tx(lambda tx: set_limits(tx, book, float_overdraft_minor=0))
    assert float_offences(network) == []
    keep(network, book, kept)
    assert float_offences(network) == [(book, f"kept {kept} lines 0")]
