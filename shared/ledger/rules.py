"""Pure posting maths: lot consumption order, returns, and the obligation rules of the design.

Nothing here does I/O; every function takes plain values and returns plain values,
so the rules are tested directly (and with Hypothesis) and reused by every path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Sequence

from shared.money import apply_rate_ppm, prorate

NETWORK = "network"


@dataclass
class LotState:
    id: str
    member_id: str
    entry_id: str
    funder_partner_id: str | None  # None: funded by the network
    billing: str  # postpaid | prepaid | network
    contract_id: str | None
    points: int
    remaining: int
    reserved: int
    issued_at: datetime
    expires_at: datetime
    is_new: bool = False
    dirty: bool = False
    bought_out_at: datetime | None = None  # its postpaid funder left and bought it out: the network reimburses

    @property
    def bought_out(self) -> bool:
        return self.bought_out_at is not None

    @property
    def free(self) -> int:
        """Points of this lot a burn or a hold may take now."""
        return self.remaining - self.reserved


@dataclass(frozen=True)
class Terms:
    """The money terms of one contract version (per-point values in micro-units, rates in ppm)."""

    contract_id: str
    partner_id: str
    billing: str
    point_value_micro: int
    issuance_fee_micro: int
    redemption_fee_ppm: int
    breakage_share_ppm: int
    base_rate_micro: int


@dataclass(frozen=True)
class Line:
    payer: str
    payee: str
    kind: str
    points: int
    amount_micro: int
    contract_id: str | None
    lot_id: str | None
    original_line_id: str | None = None


def consumption_key(lot: LotState) -> tuple:
    """Earliest expiry first; tie: oldest first; then id, so every database agrees."""
    return (lot.expires_at, lot.issued_at, lot.id)


def take_from_lots(lots: Iterable[LotState], points: int) -> list[tuple[LotState, int]] | None:
    """Which lots a burn or hold of ``points`` takes, in order; None if they do not cover it."""
    return take_in_order(sorted((lot for lot in lots if lot.free > 0), key=consumption_key), points)


def take_in_order(lots: Iterable[LotState], points: int) -> list[tuple[LotState, int]] | None:
    """``take_from_lots`` for lots already in consumption order, each with free points: reads only as
    many as it takes."""
    plan: list[tuple[LotState, int]] = []
    left = points
    for lot in lots:
        take = min(lot.free, left)
        plan.append((lot, take))
        left -= take
        if left == 0:
            return plan
    return None


def return_to_lots(taken: Sequence[tuple[str, int]], points: int) -> list[tuple[str, int]]:
    """Return ``points`` to the lots they came from, in reverse consumption order.

    ``taken`` is (lot_id, points still returnable) in the original consumption order.
    """
    plan: list[tuple[str, int]] = []
    left = points
    for lot_id, returnable in reversed(taken):
        if left == 0:
            break
        give = min(returnable, left)
        if give > 0:
            plan.append((lot_id, give))
            left -= give
    if left:
        raise ValueError("returning more points than were taken")
    return plan


def party(partner_id: str | None) -> str:
    return partner_id if partner_id is not None else NETWORK


def issuance_lines(lot: LotState, terms: Terms) -> list[Line]:
    """Money a partner owes when it issues a partner-funded lot."""
    if lot.billing == "network":
        return []
    lines = [
        Line(lot.funder_partner_id, NETWORK, "issuance_fee", lot.points,
             lot.points * terms.issuance_fee_micro, terms.contract_id, lot.id),
    ]
    if lot.billing == "prepaid":
        lines.append(Line(lot.funder_partner_id, NETWORK, "prepaid_funding", lot.points,
                          lot.points * terms.point_value_micro, terms.contract_id, lot.id))
    return [line for line in lines if line.amount_micro]


def redemption_lines(lot: LotState, points: int, redeemer: Terms) -> list[Line]:
    """Reimbursement of the redeemer for ``points`` taken from ``lot``, and its fee.

    Payer follows the lot (postpaid: its issuer; prepaid, network-funded or bought
    out by an issuer that left: the network); amounts follow the redeemer's terms. Points redeemed where they were
    funded move no money.
    """
    if lot.funder_partner_id == redeemer.partner_id:
        return []
    payer = lot.funder_partner_id if lot.billing == "postpaid" and not lot.bought_out else NETWORK
    reimbursement = points * redeemer.point_value_micro
    if reimbursement == 0:
        return []
    lines = [Line(payer, redeemer.partner_id, "redemption", points, reimbursement, redeemer.contract_id, lot.id)]
    fee = apply_rate_ppm(reimbursement, redeemer.redemption_fee_ppm)
    if fee:
        lines.append(Line(redeemer.partner_id, NETWORK, "redemption_fee", points, fee, redeemer.contract_id, lot.id))
    return lines


def breakage_lines(lot: LotState, points: int, lot_terms: Terms | None) -> list[Line]:
    """Expiry of a prepaid lot pays the issuer back its value less the network's breakage share.

    Both the value and the share come from the contract version the lot was issued under.
    Postpaid and network-funded expiry moves no money.
    """
    if lot.billing != "prepaid" or lot_terms is None:
        return []
    value = points * lot_terms.point_value_micro
    refund = value - apply_rate_ppm(value, lot_terms.breakage_share_ppm)
    if refund == 0:
        return []
    return [Line(NETWORK, lot.funder_partner_id, "breakage_refund", points, refund, lot_terms.contract_id, lot.id)]


def reversal_line(original: Line, original_line_id: str, reversed_before: tuple[int, int], points: int) -> Line | None:
    """The exact pro-rata negative of ``original`` for ``points`` more reversed points.

    ``reversed_before`` is (points, amount) already reversed from this line. Each
    reversal takes the cumulative pro-rata target minus what was reversed before, so
    a line reversed in parts sums to exactly the original.
    """
    points_before, amount_before = reversed_before
    target = prorate(original.amount_micro, points_before + points, original.points)
    amount = target - amount_before
    if points == 0:
        return None
    return Line(original.payer, original.payee, original.kind, -points, -amount,
                original.contract_id, original.lot_id, original_line_id)
