"""Money arithmetic is exact at every size the ledger allows (amounts up to 2^63 micro-units, points
up to 10^12): checked against fractions.

``Decimal`` computes in 28 significant digits by default. Before 2026-12-04 a partial reversal of a
large redemption-fee line (17 digits) over a large point count (13 digits) rounded the product before
dividing, and the half-even tie broke the wrong way (found by a model-based review).
"""

from __future__ import annotations

from fractions import Fraction
from math import floor

from hypothesis import example, given, strategies as st

from shared.money import apply_rate_ppm, divide_half_even, points_for_purchase, prorate, round_micro_to_minor

INT64 = 2**63 - 1
amounts = st.integers(min_value=-INT64, max_value=INT64)


def half_even(value: Fraction) -> int:
    low = floor(value)
    rest = value - low
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and low % 2):
        return low + 1
    return low


@given(amounts, st.integers(min_value=1, max_value=10**13))
@example(71000070999289999 * 499999999995, 999999999990)  # the review's tie
@example(5, 2)
@example(-5, 2)
@example(7, 2)
@example(-7, 2)
def test_division_rounds_half_even_exactly(numerator, denominator):
    assert divide_half_even(numerator, denominator) == half_even(Fraction(numerator, denominator))


@given(amounts, st.integers(min_value=1, max_value=10**12), st.integers(min_value=1, max_value=10**12))
@example(71000070999289999, 499999999995, 999999999990)
def test_a_prorated_share_is_the_exact_share_rounded_half_even(total, part, whole):
    share = prorate(total, min(part, whole), whole)
    assert share == (total if part >= whole else half_even(Fraction(total * part, whole)))


def test_half_of_a_huge_redemption_fee_is_its_exact_half_rounded_half_even():
    # 71000070999289999 / 2 = ...644999.5: a tie, rounded to the even ...645000
    assert prorate(71000070999289999, 499999999995, 999999999990) == 35500035499645000


@given(amounts, st.integers(min_value=0, max_value=10**6))
def test_a_rate_applies_exactly(amount, rate_ppm):
    assert apply_rate_ppm(amount, rate_ppm) == half_even(Fraction(amount * rate_ppm, 10**6))


@given(amounts)
def test_micro_units_round_once_to_minor_units(micro):
    assert round_micro_to_minor(micro) == half_even(Fraction(micro, 10**6))


@given(st.integers(min_value=0, max_value=10**15), st.integers(min_value=0, max_value=10**12),
       st.sampled_from(["CNY", "JPY", "KWD"]))
def test_points_for_a_purchase_round_down_exactly(amount, base_rate_micro, currency):
    exponent = {"CNY": 2, "JPY": 0, "KWD": 3}[currency]
    assert points_for_purchase(amount, base_rate_micro, currency) == floor(
        Fraction(amount, 10**exponent) * Fraction(base_rate_micro, 10**6))


def test_an_amount_finer_than_a_micro_unit_is_refused_however_many_digits_it_has():
    """Scaling under Decimal's 28-digit context rounded a 29th digit away: 1.000…0001 (28 zeros) was
    taken as exactly 1,000,000 micro-units. The scaling is exact, so the extra place is refused."""
    import pytest

    from shared.money import MoneyError, rate_to_ppm, to_micro

    for text in ("1.0000000000000000000000000001", "123456789012.0000000000000000000000000001",
                 "0.0000001", "-5.1234567"):
        with pytest.raises(MoneyError, match="more than 6 decimal places"):
            to_micro(text)
    with pytest.raises(MoneyError, match="more than 6 decimal places"):
        rate_to_ppm("0.050000000000000000000000000000001")
    assert to_micro("190.000000000000000000000000000000") == 190_000_000
    assert to_micro("9223372036854.775807") == 2**63 - 1
    assert rate_to_ppm("0.050000000000000000000000000000000") == 50_000


def test_an_amount_far_beyond_any_column_is_refused_without_building_it():
    import pytest

    from shared.money import MoneyError, to_micro

    with pytest.raises(MoneyError, match="out of range"):
        to_micro("1e999999999")
