"""Points for a purchase, from the rules in force: a pure function, so a quote and an earn always agree.

Every breakdown line is a whole number of points and the total is their sum:
the base (with SKU and category multipliers) is rounded once by the partner's
rounding rule; each campaign's extra is rounded on its own and then capped. A multiplier
campaign multiplies each item's points before its SKU or category multiplier, or at that
multiplier where it is below 1: never more than the item earns itself (0 for a gift card at 0).
Every product and sum is exact (see _EXACT): the rounding rule is the only rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import (ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, DivisionByZero,
                     Inexact, InvalidOperation, Overflow, localcontext)

from shared.errors import InvalidAmount
from shared.money import MICRO, currency_exponent
from shared.rules.document import Campaign, RuleSet

# The decimal context every computation of points runs in, whatever the calling thread has set.
# Python's default (28 significant digits) rounded a campaign's extra half-even before the rule's
# floor, which could then give a point too many. A multiple of 10^-k of at most 10^n has at most
# n + k + 1 digits, and an operation whose exact result fits the precision is exact. With A the
# largest amount in major units (minor units / 10^0..4, ISO 4217's places: CLF has 4) and R the
# largest rate or multiplier (6 places): an amount is a multiple of 10^-4 of at most A; an item's
# points one of 10^-10 of at most A·R; with its multiplier (the base) one of 10^-16 of at most A·R²;
# a campaign's extra, eligible points × (multiplier − 1), one of 10^-22 of at most A·R²; a tier's
# extra, whole base points × (multiplier − 1), one of 10^-6 of at most A·R³ (sums stay within these:
# items add up to at most the amount). At the documented bounds — an amount of at most 10^15 minor
# units (the API's), rates and multipliers at most MAX_RATE = 10^12 — that is at most 62 digits (10^39
# at 10^-22).
# 100 digits also cover a version stored before MAX_RATE (a stored rate has at most 28 digits with
# its 6 places: R < 10^22) at amounts up to 10^19 (at most 92 digits: 10^85 at 10^-6). Beyond that
# Inexact is trapped: an inexact intermediate refuses the purchase (invalid_amount) rather than
# rounding it silently. The rule's rounding (to_integral_value) signals neither Inexact nor Rounded.
_EXACT = Context(prec=100, rounding=ROUND_HALF_EVEN, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])

ROUNDING = {"floor": ROUND_FLOOR, "half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN, "ceiling": ROUND_CEILING}


@dataclass(frozen=True)
class PurchaseItem:
    sku: str
    category: str | None
    amount: int  # minor units for the line
    quantity: int = 1


@dataclass(frozen=True)
class BreakdownLine:
    rule: str
    description: str
    points: int
    funded_by: str  # partner | network
    campaign: str | None = None  # "<scope>:<id>" for campaign lines (caps are kept per campaign)


@dataclass
class Evaluation:
    lines: list[BreakdownLine] = field(default_factory=list)

    @property
    def partner_points(self) -> int:
        return sum(line.points for line in self.lines if line.funded_by == "partner")

    @property
    def network_points(self) -> int:
        return sum(line.points for line in self.lines if line.funded_by == "network")


def _round(value: Decimal, rule: str) -> int:
    return int(value.to_integral_value(rounding=ROUNDING[rule]))


def is_active(campaign: Campaign, local: datetime) -> bool:
    """Whether the campaign runs at this local time (its dates and weekdays; categories aside)."""
    day = local.date()
    return campaign.starts_on <= day <= campaign.ends_on and (
        campaign.weekdays is None or local.isoweekday() in campaign.weekdays)


NO_RULES = RuleSet()  # a partner without rules of its own (read only; built once, not per earn)


def evaluate(*, amount: int, items: tuple[PurchaseItem, ...] | None, occurred_local: datetime, currency: str,
             contract_base_rate_micro: int, partner: RuleSet | None, partner_scope: str,
             network: RuleSet | None = None, usage: dict[str, tuple[int, int]] | None = None,
             tier: str | None = None) -> Evaluation:
    """``usage``: campaign key -> (points already given to this member, points given in all);
    ``tier``: the member's tier when the earn posts (its multiplier applies to the base points)."""
    try:
        with localcontext(_EXACT):
            return _evaluate(amount=amount, items=items, occurred_local=occurred_local, currency=currency,
                             contract_base_rate_micro=contract_base_rate_micro, partner=partner,
                             partner_scope=partner_scope, network=network, usage=usage, tier=tier)
    except Inexact:
        raise InvalidAmount(f"the points of a purchase of {amount} minor units at these rates have too many "
                            "digits to be computed exactly") from None


def _evaluate(*, amount: int, items: tuple[PurchaseItem, ...] | None, occurred_local: datetime, currency: str,
              contract_base_rate_micro: int, partner: RuleSet | None, partner_scope: str,
              network: RuleSet | None, usage: dict[str, tuple[int, int]] | None, tier: str | None) -> Evaluation:
    rules = partner or NO_RULES
    usage = usage or {}
    result = Evaluation()
    unit = Decimal(10) ** currency_exponent(currency)
    rate = rules.base_rate if rules.base_rate is not None else Decimal(contract_base_rate_micro) / MICRO
    if amount < rules.minimum_spend:
        result.lines.append(BreakdownLine("minimum_spend", f"below the minimum spend of {rules.minimum_spend}", 0,
                                          "partner"))
        return result
    items = items or ()
    base = Decimal(0)
    multiplied = Decimal(0)
    # what a multiplier campaign multiplies: each item's base points, but never more than the item
    # earns itself — not compounded with a multiplier above 1, nothing for an item at 0, an item at
    # 0.5 at its own (halved) points (docs/earn-rules.md, "How points are computed", 3)
    campaign_base = Decimal(0)
    by_category: dict[str | None, Decimal] = {}
    for item in items:
        points = Decimal(item.amount) / unit * rate
        base += points
        # an item without a category has no category multiplier (as it is in no campaign's categories)
        multiplier = rules.skus.get(item.sku, Decimal(1) if item.category is None
                                    else rules.categories.get(item.category, Decimal(1)))
        multiplied += points * (multiplier - 1)
        own = points * min(multiplier, Decimal(1))
        campaign_base += own
        by_category[item.category] = by_category.get(item.category, Decimal(0)) + own
    rest = amount - sum(item.amount for item in items)
    if rest > 0:
        base += Decimal(rest) / unit * rate
        campaign_base += Decimal(rest) / unit * rate
    base_points = _round(base + multiplied, rules.rounding)
    description = f"{rate.normalize():f} points per {currency} unit"
    if multiplied:
        description += ", with SKU and category multipliers"
    result.lines.append(BreakdownLine("base_rate", description, base_points, "partner"))
    tier_multiplier = rules.tier_multipliers.get(tier) if tier else None
    if tier_multiplier is not None and tier_multiplier > 1:
        extra = _round(Decimal(base_points) * (tier_multiplier - 1), rules.rounding)
        if extra > 0:
            result.lines.append(BreakdownLine(f"tier:{tier}", f"{tier} tier: {tier_multiplier.normalize():f}× "
                                              "the base points", extra, "partner"))
    campaigns = [(partner_scope, c, rules.rounding) for c in rules.campaigns]
    if network is not None:
        campaigns += [("network", c, network.rounding) for c in network.campaigns]
    for scope, campaign, rounding in campaigns:
        if not is_active(campaign, occurred_local):
            continue
        if campaign.categories is None:
            eligible = campaign_base
        elif any(category in by_category for category in campaign.categories):  # items in them, even at 0 points
            # each category once: a version stored before a repeated category was refused lists one twice
            eligible = sum((by_category.get(category, Decimal(0)) for category in dict.fromkeys(campaign.categories)),
                           Decimal(0))
        else:
            continue
        if campaign.multiplier is not None:
            extra = _round(eligible * (campaign.multiplier - 1), rounding)
        else:
            extra = campaign.bonus_points or 0
        key = f"{scope}:{campaign.id}"
        member_used, total_used = usage.get(key, (0, 0))
        if campaign.per_member_cap is not None:
            extra = min(extra, max(0, campaign.per_member_cap - member_used))
        if campaign.campaign_cap is not None:
            extra = min(extra, max(0, campaign.campaign_cap - total_used))
        if extra > 0:
            funded_by = "network" if scope == "network" else campaign.funded_by
            result.lines.append(BreakdownLine(f"campaign:{campaign.id}", campaign.name, extra, funded_by, key))
    return result
