"""Money without floats: amounts in integer micro-units of the minor unit, rates in parts per million.

An exact amount is an integer number of micro-units (10⁻⁶ fen for CNY). Rates are
``Decimal`` values with at most six decimal places, stored as integer parts per
million. Rounding to minor units happens once, when clearing sums a cycle.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import cache

MICRO = 1_000_000
PPM = 1_000_000
MAX_MICRO = 2**63 - 1  # the largest amount a ledger column (64-bit integer) holds


class MoneyError(ValueError):
    pass


@cache
def _minor_units() -> dict[str, int]:
    """Every currency of ISO 4217 list one (current codes) that has a minor unit, with its places:
    CLP 0, CNY 2, IQD 3, CLF 4. From the maintained ``iso4217`` package (its data is the ISO 4217
    Maintenance Agency's list one of the date it names, ``iso4217.__published__``), not CLDR's
    digits, which differ for some codes. Codes without a minor unit (XAU gold, XDR, XXX) are left out."""
    from iso4217 import Currency  # read on first use: parsing its table costs a few milliseconds

    return {currency.code: currency.exponent for currency in Currency if currency.exponent is not None}


def currency_exponent(currency: str) -> int:
    """The places of ``currency``'s minor unit (ISO 4217): 2 for CNY (100 fen to the yuan), 0 for
    JPY and CLP, 3 for KWD and IQD, 4 for CLF. A code without one is refused, never guessed: the
    network's currency is checked when its settings are read (shared/config.py)."""
    exponent = _minor_units().get(currency.strip().upper())
    if exponent is None:
        raise MoneyError(f"{currency!r} is not an ISO 4217 currency with a minor unit")
    return exponent


def to_decimal(value: Decimal | int | str, *, what: str = "value") -> Decimal:
    if isinstance(value, float):
        raise MoneyError(f"{what}: floats are not accepted for money, use a decimal string")
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise MoneyError(f"{what}: {value!r} is not a decimal number") from exc
    if not result.is_finite():
        raise MoneyError(f"{what}: {value!r} is not finite")
    return result


def _scaled_exactly(number: Decimal, places: int, *, what: str, value) -> Decimal:
    """``number`` × 10^places, exactly: a product under Decimal's context would be rounded to 28
    significant digits, and a 29th decimal digit rounded away would pass as a whole number."""
    if number and number.adjusted() + places > 40:  # far beyond any 64-bit column: refused before int() of it
        raise MoneyError(f"{what}: {value} is out of range")
    sign, digits, exponent = number.as_tuple()
    return Decimal((sign, digits, exponent + places))


def to_micro(value: Decimal | int | str, *, what: str = "amount") -> int:
    """Minor units (decimals allowed down to 10⁻⁶) as exact integer micro-units."""
    scaled = _scaled_exactly(to_decimal(value, what=what), 6, what=what, value=value)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{what}: {value} has more than 6 decimal places of the minor unit")
    return int(scaled)


def rate_to_ppm(value: Decimal | int | str, *, what: str = "rate", maximum: Decimal | None = Decimal(1)) -> int:
    """A rate such as 0.05 as integer parts per million, refusing precision we cannot keep."""
    rate = to_decimal(value, what=what)
    if rate < 0 or (maximum is not None and rate > maximum):
        raise MoneyError(f"{what}: {value} must lie between 0 and {maximum}")
    scaled = _scaled_exactly(rate, 6, what=what, value=value)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{what}: {value} has more than 6 decimal places")
    return int(scaled)


def ppm_to_rate(ppm: int) -> Decimal:
    return (Decimal(ppm) / PPM).normalize()


def micro_to_minor_decimal(micro: int) -> Decimal:
    return (Decimal(micro) / MICRO).normalize()


def divide_half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-even, in exact integer arithmetic whatever the sizes.

    (``Decimal`` computes in 28 significant digits by default: a product such as a fee line of 17
    digits times a point count of 13 was rounded before its division, and a tie broke the wrong way.)
    """
    if denominator <= 0:
        raise MoneyError("division by a non-positive whole")
    quotient, remainder = divmod(numerator, denominator)  # floor: 0 <= remainder < denominator
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2):
        quotient += 1
    return quotient


def round_micro_to_minor(micro: int) -> int:
    """Round an exact micro-unit amount once, half-even, to whole minor units."""
    return divide_half_even(micro, MICRO)


def apply_rate_ppm(amount_micro: int, rate_ppm: int) -> int:
    """amount × rate, rounded half-even to a whole micro-unit."""
    return divide_half_even(amount_micro * rate_ppm, PPM)


def prorate(total: int, part: int, whole: int) -> int:
    """total × part / whole rounded half-even; exact when part == whole."""
    if whole <= 0:
        raise MoneyError("prorate over an empty whole")
    if part == whole:
        return total
    return divide_half_even(total * part, whole)


def points_for_purchase(amount_minor: int, base_rate_micro: int, currency: str) -> int:
    """Points earned for a purchase: amount (minor units) × points per major unit, rounded down."""
    return (amount_minor * base_rate_micro) // (MICRO * 10 ** currency_exponent(currency))


MAX_MAJOR_DIGITS = 15  # whole major units an amount typed by a person may have (far beyond any settlement)


def major_to_minor(text: str, currency: str, *, what: str = "amount") -> int:
    """An amount a person typed in major units as a plain decimal (``1234.56`` for CNY) as whole minor
    units: digits 0-9, at most one point and at most the currency's minor-unit places after it (none
    for JPY). A sign, a thousands separator, an exponent, NaN or Infinity, more places, or nothing is
    refused (MoneyError, naming what was typed); 0 is returned as 0 for the caller to refuse."""
    places = currency_exponent(currency)
    value = text.strip()
    whole, point, fraction = value.partition(".")
    plain = (whole.isascii() and whole.isdigit() and len(whole) <= MAX_MAJOR_DIGITS
             and (not point or (fraction.isascii() and fraction.isdigit() and len(fraction) <= places)))
    if not plain:
        shape = f"with at most {places} decimal place{'s' if places != 1 else ''}" if places else "whole"
        raise MoneyError(f"{what} is a plain decimal of major units ({_example(places)}), {shape}, "
                         f"without a sign or separators, not {text!r}")
    return int(whole) * 10 ** places + int(fraction.ljust(places, "0") or 0)


def _example(places: int) -> str:
    return "1234" + ("." + "56789"[:places] if places else "")


def minor_to_major(minor: int, currency: str) -> str:
    """Whole minor units as a plain decimal of major units with every place (``-1234.50`` for CNY)."""
    places = currency_exponent(currency)
    sign, digits = ("-" if minor < 0 else ""), str(abs(minor)).rjust(places + 1, "0")
    return sign + (f"{digits[:-places]}.{digits[-places:]}" if places else digits)
