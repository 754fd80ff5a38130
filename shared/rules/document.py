"""The earn rules document (JSON or YAML), validated with clear errors. See docs/earn-rules.md."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.errors import ValidationFailed

ACTIVITY_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _rate(value: Decimal, what: str) -> Decimal:
    if value < 0 or value != value.quantize(Decimal("0.000001")):
        raise ValueError(f"{what} must be non-negative with at most 6 decimal places")
    return value


class Campaign(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    starts_on: date
    ends_on: date
    weekdays: list[int] | None = Field(None, description="ISO weekdays 1 (Monday) … 7 (Sunday), network time zone")
    multiplier: Decimal | None = Field(None, description="e.g. 2 for double points (applies to the base points)")
    bonus_points: int | None = Field(None, gt=0, description="a fixed bonus per qualifying earn")
    categories: list[str] | None = Field(None, description="only purchases (items) in these categories")
    funded_by: Literal["partner", "network"] = "partner"
    per_member_cap: int | None = Field(None, gt=0)
    campaign_cap: int | None = Field(None, gt=0)

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value):
        if value is not None and (not value or any(day not in range(1, 8) for day in value)):
            raise ValueError("weekdays are ISO numbers 1 (Monday) to 7 (Sunday)")
        return value

    @model_validator(mode="after")
    def _one_reward(self):
        if (self.multiplier is None) == (self.bonus_points is None):
            raise ValueError(f"campaign {self.id}: give exactly one of multiplier or bonus_points")
        if self.multiplier is not None:
            _rate(self.multiplier, "multiplier")
            if self.multiplier <= 1:
                raise ValueError(f"campaign {self.id}: a multiplier must be greater than 1")
        if self.ends_on < self.starts_on:
            raise ValueError(f"campaign {self.id}: ends_on is before starts_on")
        return self


class Activity(Strict):
    """Points for a non-purchase action (sign-up, survey, check-in, ...), partner-funded."""

    points: int = Field(gt=0, le=10**9, description="points per award")
    per_member_per_day: int | None = Field(None, gt=0, description="awards per member per network day")
    per_member_total: int | None = Field(None, gt=0, description="awards per member in all")

    @model_validator(mode="after")
    def _caps(self):
        if (self.per_member_per_day is not None and self.per_member_total is not None
                and self.per_member_per_day > self.per_member_total):
            raise ValueError("per_member_per_day cannot exceed per_member_total")
        return self


class Referral(Strict):
    """The referrer's bonus on a referred member's first qualifying earn."""

    bonus_points: int = Field(gt=0, le=10**9)
    min_spend: int = Field(0, ge=0, description="minor units the qualifying purchase must reach")
    funded_by: Literal["partner", "network"] = "partner"


class Limits(Strict):
    """Velocity limits, in points per network day (midnight in the network time zone)."""

    member_daily_earn: int | None = Field(None, gt=0, description="points one member may earn, all partners")
    member_daily_burn: int | None = Field(None, gt=0, description="points one member may spend, all partners")
    partner_daily_issuance: int | None = Field(None, gt=0, description="partner-funded points a partner may issue")


class RuleSet(Strict):
    base_rate: Decimal | None = Field(None, description="points per major currency unit; default: the contract's")
    minimum_spend: int = Field(0, ge=0, description="minor units below which a purchase earns nothing")
    rounding: Literal["floor", "half_up", "half_even", "ceiling"] = "floor"
    categories: dict[str, Decimal] = Field(default_factory=dict, description="category -> multiplier")
    skus: dict[str, Decimal] = Field(default_factory=dict, description="SKU -> multiplier (wins over category)")
    campaigns: list[Campaign] = Field(default_factory=list)
    activities: dict[str, Activity] = Field(default_factory=dict, description="activity name -> points and caps")
    referral: Referral | None = None
    limits: Limits | None = None
    tier_multipliers: dict[str, Decimal] = Field(
        default_factory=dict, description="member tier -> multiplier of the base points (e.g. gold: 1.5)")

    @field_validator("base_rate")
    @classmethod
    def _base(cls, value):
        return None if value is None else _rate(value, "base_rate")

    @field_validator("categories", "skus")
    @classmethod
    def _multipliers(cls, value):
        for key, multiplier in value.items():
            _rate(multiplier, f"multiplier of {key}")
        return value

    @field_validator("tier_multipliers")
    @classmethod
    def _tier_multipliers(cls, value):
        for tier, multiplier in value.items():
            _rate(multiplier, f"tier multiplier of {tier}")
            if multiplier < 1:
                raise ValueError(f"tier multiplier of {tier} must be at least 1 (a tier never earns less)")
        return value

    @model_validator(mode="after")
    def _unique_campaigns(self):
        ids = [c.id for c in self.campaigns]
        if len(ids) != len(set(ids)):
            raise ValueError("campaign ids must be unique")
        for name in self.activities:
            if not ACTIVITY_NAME.fullmatch(name):
                raise ValueError(f"activity name {name!r}: lowercase letters, digits, - and _ (at most 64)")
        return self


def parse(text: str, *, network: bool = False) -> RuleSet:
    """Read a JSON or YAML rules document; refuse it with every problem named."""
    try:
        data = yaml.safe_load(text) if not text.lstrip().startswith("{") else json.loads(text)
    except (yaml.YAMLError, ValueError) as exc:
        raise ValidationFailed(f"the rules document is not valid JSON or YAML: {exc}") from exc
    try:
        rules = RuleSet.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg']}" for e in exc.errors())
        raise ValidationFailed(f"the rules document is invalid: {problems}") from exc
    if network and (rules.base_rate is not None or rules.categories or rules.skus or rules.minimum_spend
                    or rules.tier_multipliers):
        raise ValidationFailed("network-wide rules hold campaigns only (rates belong to partners' rules)")
    if network and any(c.funded_by != "network" for c in rules.campaigns):
        raise ValidationFailed("network-wide campaigns are funded by the network (funded_by: network)")
    if network and rules.activities:
        raise ValidationFailed("activities belong to partners' rules (each partner funds its own)")
    if network and rules.referral is not None and rules.referral.funded_by != "network":
        raise ValidationFailed("a network-wide referral bonus is funded by the network (funded_by: network)")
    if not network and rules.limits is not None and (
            rules.limits.member_daily_earn is not None or rules.limits.member_daily_burn is not None):
        raise ValidationFailed("member limits count across the network: set member_daily_earn and "
                               "member_daily_burn in the network's rules; a partner's limits hold "
                               "partner_daily_issuance only")
    return rules


def canonical(rules: RuleSet) -> str:
    return json.dumps(rules.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
