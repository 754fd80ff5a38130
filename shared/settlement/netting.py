"""Netting obligation lines: exact sums per (payer, payee, kind), rounded once, then net positions."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from shared.money import round_micro_to_minor


class NettingError(AssertionError):
    """Net positions that do not sum to zero: a run must fail loudly and write nothing."""


def bilateral_sums(lines: Iterable[tuple[str, str, str, int]]) -> dict[tuple[str, str, str], int]:
    """(payer, payee, kind, amount_micro) lines → minor units per (payer, payee, kind), rounded half-even once."""
    exact: dict[tuple[str, str, str], int] = defaultdict(int)
    for payer, payee, kind, amount_micro in lines:
        exact[(payer, payee, kind)] += amount_micro
    return {key: round_micro_to_minor(total) for key, total in sorted(exact.items())}


def net_positions(sums: dict[tuple[str, str, str], int]) -> dict[str, int]:
    """Multilateral net position of every party (positive: receives). Sums to exactly zero."""
    positions: dict[str, int] = defaultdict(int)
    for (payer, payee, _kind), amount in sums.items():
        positions[payer] -= amount
        positions[payee] += amount
    if sum(positions.values()) != 0:
        raise NettingError(f"net positions sum to {sum(positions.values())}, not zero")
    return dict(sorted(positions.items()))
