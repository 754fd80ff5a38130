"""Numbers on the dashboard: read from its forms in the ASCII digits 0-9 only, and shown as a finance
clerk reads them (money in the currency's major units with its symbol, grouped).

int(), float() and Decimal() also read other scripts' digits (full-width ``１２``, Arabic-Indic
``١٢``) and forms an operator did not mean (``1_000``, ``+5``, ``nan``): a form field is refused
unless it is written in ASCII, before anything is written or queued. A decimal may carry an exponent
(``1e30``), as the command line reads terms, so that a term too large is named with its bound.

Amounts shown are exact: minor units become major units by moving the decimal point
(``Decimal.scaleb``), never through a float.
"""

from __future__ import annotations

import re
from decimal import Decimal

from shared.money import currency_exponent
from shared.reports.labels import SYMBOLS

WHOLE = re.compile(r"-?[0-9]+")  # a whole number; a leading minus where negatives are allowed
DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")  # 0 or more, optional fraction
# an exact amount as a reconciliation break writes it: minor units with six places (shared.settlement.files.exact)
EXACT_IN_TEXT = re.compile(r"(?<![\w.])-?[0-9]+\.[0-9]{6}(?![\w.])")


def is_whole(text: str, *, negative: bool = False) -> bool:
    return bool(WHOLE.fullmatch(text)) and (negative or not text.startswith("-"))


def is_decimal(text: str) -> bool:
    return bool(DECIMAL.fullmatch(text))


def major_units(minor: int | str | Decimal, currency: str) -> Decimal:
    """Minor units (a whole number, or an exact amount with a fraction of a minor unit) in the
    currency's major units, exactly: 5956789 fen → Decimal('59567.89') yuan."""
    return Decimal(str(minor).strip()).scaleb(-currency_exponent(currency))


def chart_amount(minor: int | str | Decimal, currency: str) -> str:
    """A chart's value: the amount in major units as exact decimal text (JSON keeps it as written;
    Chart.js reads it as a number only to draw it)."""
    return f"{major_units(minor, currency):f}"


def money_format(currency: str) -> dict:
    """How a chart's script writes an amount in this currency: its symbol (or, without one, its code
    after the number) and the places of its minor unit."""
    code = currency.upper()
    return {"symbol": SYMBOLS.get(code, ""), "code": code, "digits": currency_exponent(code)}


def exact_money(minor: int | str | Decimal, currency: str) -> str:
    """An exact amount of minor units (up to six places) as money in major units, grouped, with every
    place it has and at least the currency's own: '2500000.000000' CNY → '¥25,000.00',
    '3404937.165000' → '¥34,049.37165'."""
    value = major_units(minor, currency)
    exponent = currency_exponent(currency)
    places = max(exponent, -value.normalize().as_tuple().exponent) if value else exponent
    text = f"{abs(value):,.{places}f}"
    symbol = SYMBOLS.get(currency.upper())
    sign = "-" if value < 0 else ""
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency.upper()}"


def exact_amounts_as_money(text: str, currency: str) -> str:
    """A reconciliation break's side ('burn 5.000000', 'line 3: burn 5 5.000000') with each exact
    amount of minor units written as money ('burn ¥0.05'); kinds and points are left as they are."""
    return EXACT_IN_TEXT.sub(lambda found: exact_money(found.group(0), currency), text or "")

