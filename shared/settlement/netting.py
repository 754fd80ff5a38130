"""Netting obligation lines: exact sums per (payer, payee, kind), rounded once, then net positions."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Iterable

from shared.errors import Conflict
from shared.money import MAX_MICRO, round_micro_to_minor

NETWORK = "network"


class NettingError(AssertionError):
    """Net positions that do not sum to zero: a run must fail loudly and write nothing."""


class CycleSumTooLarge(Conflict):
    """A cycle's exact sum for one (payer, payee, kind) beyond a 64-bit amount: each line fits one (posting
    refuses more), but a cycle sums any number of them, and the report roll-ups (``report_cycle_lines``)
    and reconciliation hold each sum as one. The run refuses and writes nothing, rather than failing
    on the database's overflow."""

    code, title = "cycle_sum_too_large", "A sum of the cycle is larger than one amount may hold"


def refuse_sum_beyond_64_bits(cycle: date, payer: str, payee: str, kind: str, amount_micro: int) -> None:
    if abs(amount_micro) > MAX_MICRO:
        raise CycleSumTooLarge(f"cycle {cycle.isoformat()} cannot be settled: its {kind} lines from {payer} to "
                               f"{payee} sum to {Decimal(amount_micro).scaleb(-6):.6f} minor units, more than "
                               f"one sum may hold ({Decimal(MAX_MICRO).scaleb(-6):.6f})")


def bilateral_sums(lines: Iterable[tuple[str, str, str, int]]) -> dict[tuple[str, str, str], int]:
    """(payer, payee, kind, amount_micro) lines → minor units per (payer, payee, kind), rounded half-even once."""
    exact: dict[tuple[str, str, str], int] = defaultdict(int)
    for payer, payee, kind, amount_micro in lines:
        exact[(payer, payee, kind)] += amount_micro
    return {key: round_micro_to_minor(total) for key, total in sorted(exact.items())}


def net_positions(sums: dict[tuple[str, str, str], int], *, network: bool = True) -> dict[str, int]:
    """Multilateral net position of every party (positive: receives). Sums to exactly zero.

    The network is always a party, at 0 when it has no line in the cycle (no fees, nothing prepaid)
    or the cycle has no line at all (format version 3). ``network=False``: the parties of the lines
    only, as format versions 1 and 2 wrote them (a recomputation of their directories)."""
    positions: dict[str, int] = defaultdict(int)
    if network:
        positions[NETWORK] = 0
    for (payer, payee, _kind), amount in sums.items():
        positions[payer] -= amount
        positions[payee] += amount
    if sum(positions.values()) != 0:
        raise NettingError(f"net positions sum to {sum(positions.values())}, not zero")
    return dict(sorted(positions.items()))
