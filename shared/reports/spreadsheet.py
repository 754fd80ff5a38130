"""CSV cells that a spreadsheet reads as text, never as a formula (CSV injection, OWASP).

A spreadsheet opening a CSV evaluates a cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return as a formula. Names that partners and operators choose (partners, campaigns, the
references of a partner's log) reach downloadable CSV files, so a text cell that begins so is
written with a leading single quote, as OWASP recommends. A number stays a number: ``-568`` and
``-0.05`` are left alone. A text that already begins with quotes before such a character gets one
more, so ``unquoted`` gives every cell back exactly.

Used by the report CSV (shared/reports/render.py) and the reconciliation breaks CSV
(shared/settlement/positions.py); not by the settlement files, whose bytes are fixed and signed for
machines (docs/settlement-files.md).
"""

from __future__ import annotations

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")
_QUOTED = re.compile(r"'+[=+\-@\t\r]")


def _is_formula(text: str) -> bool:
    return text.startswith(FORMULA_STARTS) and not _NUMBER.match(text)


def spreadsheet_text(text: str) -> str:
    """``text`` as a CSV cell: with a leading ``'`` where a spreadsheet would read a formula."""
    if _is_formula(text) or _QUOTED.match(text):
        return "'" + text
    return text


def unquoted(cell: str) -> str:
    """The text ``spreadsheet_text`` made ``cell`` of."""
    return cell[1:] if _QUOTED.match(cell) else cell


def spreadsheet_row(row) -> list[str]:
    return [spreadsheet_text(str(cell)) for cell in row]
