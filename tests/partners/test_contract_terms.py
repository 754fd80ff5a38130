"""Contract terms are refused as bad input, naming the term, before anything is stored: a money term
(point_value, issuance_fee) is at most 9223372036854.775807, the most whose micro-units (millionths)
fit the contracts table's 64-bit columns; the base rate is at most 1000000000000, the cap the earn
rules put on a rate (one major unit earns at most the points one event may move)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from shared.errors import ValidationFailed
from shared.models import Contract, Partner
from shared.money import MAX_MICRO
from shared.partners.contracts import ContractTerms, add_contract_version
from tests.factories import make_partner

LARGEST = "9223372036854.775807"  # MAX_MICRO micro-units
ABOVE = "9223372036854.775808"
TERMS = ("point_value", "issuance_fee")  # money terms; the base rate has the earn rules' bound
ALL_TERMS = TERMS + ("base_rate",)
RATE_CAP = "1000000000000"  # shared.rules.document.MAX_RATE: MAX_POINTS points per major unit
COLUMNS = {"point_value": "point_value_micro", "issuance_fee": "issuance_fee_micro", "base_rate": "base_rate_micro"}


def stored(network, model, *where) -> int:
    return network.tx(lambda tx: tx.session.scalar(select(func.count()).select_from(model).where(*where)),
                      readonly=True)


@pytest.mark.parametrize("term", TERMS)
def test_the_largest_term_whose_millionths_fit_64_bits_is_stored(network, term):
    """A term of exactly 9223372036854.775807 is accepted and stored as 2^63 - 1."""
    partner = make_partner(network, "At the bound", **{term: LARGEST})
    contract = network.tx(lambda tx: tx.session.scalar(select(Contract).where(Contract.partner_id == partner)),
                          readonly=True)
    assert getattr(contract, COLUMNS[term]) == MAX_MICRO


@pytest.mark.parametrize("value", [ABOVE, "1e30", "1e999999999"])
@pytest.mark.parametrize("term", TERMS)
def test_a_term_above_the_bound_is_refused_naming_it_and_nothing_is_stored(network, term, value):
    """One millionth more, 1e30 or a number beyond Decimal's exponent range: validation_failed saying
    which term and its bound (not a database error, not decimal.Overflow), and no partner is stored."""
    with pytest.raises(ValidationFailed) as refusal:
        make_partner(network, "Too big", **{term: value})
    assert refusal.value.code == "validation_failed"
    assert str(refusal.value).startswith(f"{term}: {value} must be at most 9223372036854.775807"), str(refusal.value)
    assert stored(network, Partner) == 0 and stored(network, Contract) == 0


@pytest.mark.parametrize("term", TERMS)
def test_a_new_contract_version_above_the_bound_is_refused_and_nothing_is_stored(network, clock, term):
    """The same bound for a later contract version: refused before its row is written."""
    partner = make_partner(network, "Shop")
    with pytest.raises(ValidationFailed) as refusal:
        network.tx(lambda tx: add_contract_version(tx, partner, ContractTerms(**{term: "1e30"})))
    assert f"{term}: 1e30 must be at most 9223372036854.775807" in str(refusal.value)
    assert stored(network, Contract, Contract.partner_id == partner) == 1
    added = network.tx(lambda tx: add_contract_version(tx, partner, ContractTerms(**{term: LARGEST})))
    assert added["contract_version"] == 2 and date.fromisoformat(added["effective_from"])


def test_the_base_rate_at_the_earn_rules_cap_is_stored(network):
    """A contract's base rate may be as high as a rules document's (MAX_RATE), and no higher."""
    from shared.rules.document import MAX_RATE

    assert str(MAX_RATE) == RATE_CAP
    partner = make_partner(network, "At the cap", base_rate=RATE_CAP)
    contract = network.tx(lambda tx: tx.session.scalar(select(Contract).where(Contract.partner_id == partner)),
                          readonly=True)
    assert contract.base_rate_micro == 10**12 * 10**6


@pytest.mark.parametrize("value", ["1000000000000.000001", LARGEST, ABOVE, "1e30", "1e999999999"])
def test_a_base_rate_above_the_earn_rules_cap_is_refused_naming_it_and_nothing_is_stored(network, value):
    """Above 10^12 points per major unit (what the earn rules refuse in a document): validation_failed
    naming the term and the cap, and no partner is stored."""
    with pytest.raises(ValidationFailed) as refusal:
        make_partner(network, "Too big", base_rate=value)
    assert refusal.value.code == "validation_failed"
    assert str(refusal.value) == (f"base_rate: {value} must be at most {RATE_CAP} points per major unit "
                                  f"(the most points one event moves)"), str(refusal.value)
    assert stored(network, Partner) == 0 and stored(network, Contract) == 0


def test_a_new_contract_version_with_a_base_rate_above_the_cap_is_refused(network, clock):
    partner = make_partner(network, "Shop")
    with pytest.raises(ValidationFailed) as refusal:
        network.tx(lambda tx: add_contract_version(tx, partner, ContractTerms(base_rate=LARGEST)))
    assert f"base_rate: {LARGEST} must be at most {RATE_CAP} points per major unit" in str(refusal.value)
    assert stored(network, Contract, Contract.partner_id == partner) == 1
    added = network.tx(lambda tx: add_contract_version(tx, partner, ContractTerms(base_rate=RATE_CAP)))
    assert added["contract_version"] == 2


@pytest.mark.parametrize("term", ALL_TERMS)
@pytest.mark.parametrize("value", ["-1", "-1e999999999"])
def test_a_negative_term_is_refused_as_0_or_more(network, term, value):
    """A negative money term or base rate, however large, is `TERM: VALUE must be 0 or more`."""
    with pytest.raises(ValidationFailed) as refusal:
        ContractTerms(**{term: value}).to_columns()
    assert str(refusal.value) == f"{term}: {value} must be 0 or more"


def test_a_contract_version_takes_effect_at_most_ten_years_ahead(network, clock):
    """An effective date more than 10 years after the network's today (a typo: 2206 for 2026, or the
    calendar's last day 9999-12-31, after which no day can be computed) is refused as bad input,
    naming the latest date allowed, and nothing is stored; up to the horizon is accepted."""
    from shared.ledger.cycles import cycle_date_for

    partner = make_partner(network, "Shop")
    today = network.tx(lambda tx: cycle_date_for(tx.now, tx.settings), readonly=True)
    horizon = today.replace(year=today.year + 10)
    for too_far in (date(9999, 12, 31), horizon + timedelta(days=1)):
        with pytest.raises(ValidationFailed) as refusal:
            network.tx(lambda tx: add_contract_version(tx, partner, ContractTerms(), too_far))
        assert refusal.value.code == "validation_failed"
        assert f"at most 10 years ahead ({horizon.isoformat()} at the latest)" in str(refusal.value), str(refusal.value)
    assert stored(network, Contract, Contract.partner_id == partner) == 1
    added = network.tx(lambda tx: add_contract_version(tx, partner, ContractTerms(), horizon))
    assert added["effective_from"] == horizon.isoformat()
