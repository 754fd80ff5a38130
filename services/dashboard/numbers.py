"""Numbers typed into the dashboard's forms, read in the ASCII digits 0-9 only.

int(), float() and Decimal() also read other scripts' digits (full-width ``１２``, Arabic-Indic
``١٢``) and forms an operator did not mean (``1_000``, ``+5``, ``nan``): a form field is refused
unless it is written in ASCII, before anything is written or queued. A decimal may carry an exponent
(``1e30``), as the command line reads terms, so that a term too large is named with its bound.
"""

from __future__ import annotations

import re

WHOLE = re.compile(r"-?[0-9]+")  # a whole number; a leading minus where negatives are allowed
DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")  # 0 or more, optional fraction


def is_whole(text: str, *, negative: bool = False) -> bool:
    return bool(WHOLE.fullmatch(text)) and (negative or not text.startswith("-"))


def is_decimal(text: str) -> bool:
    return bool(DECIMAL.fullmatch(text))
