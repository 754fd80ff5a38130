"""The earn rules document (JSON or YAML), validated with clear errors. See docs/earn-rules.md.

Read strictly: a number is read from the digits written, never through a binary float (1.5 is
Decimal("1.5")); counts (points, caps, weekdays, minor units) are whole numbers written as such
(not 20.0, "20", true or YAML's 010 and 1:30); rates and multipliers are decimals (a number or a
decimal string, never a float or a boolean, as shared.money.to_decimal); a campaign's dates are
exactly YYYY-MM-DD (a YAML date written so, or a string), not a number or a date and time.
A rate or multiplier is at most MAX_RATE, and the document is a mapping of fields (an empty
document is an empty rule set; a list, false or 0 is refused, not read as one) in which no
mapping gives a key twice (YAML and JSON would keep the last silently).
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Context, Decimal, InvalidOperation
from typing import Annotated, Literal

import yaml
from yaml.reader import ReaderError
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo,
                      field_validator, model_validator)

from shared.errors import ValidationFailed
from shared.ledger.events import MAX_POINTS
from shared.money import MoneyError, to_decimal
from shared.clock import parse_date

ACTIVITY_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_PLAIN_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)", re.ASCII)
_PLAIN_DECIMAL = re.compile(r"[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?", re.ASCII)


class _RepeatedKey(ValueError):
    """A key given twice in one mapping: YAML and JSON would keep the last one and drop the first silently."""


class _Loader(yaml.SafeLoader):
    """YAML as written: plain integers are ints and decimals Decimals (from their text); YAML 1.1's
    other number forms (010 is 8, 0x10, 1:30 is 90, .inf) and its timestamps stay the text written,
    for the fields to accept (a date YYYY-MM-DD) or refuse. A key given twice in a mapping is refused."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # << merges, which its own keys may override
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    repeated = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: refused by the constructor below
                    continue
                if repeated:
                    raise _RepeatedKey(f"{key} is given twice (line {key_node.start_mark.line + 1}); "
                                       "write each key once")
        return super().construct_mapping(node, deep=deep)


def _json_object(pairs: list[tuple[str, object]]) -> dict:
    found = {}
    for key, value in pairs:
        if key in found:
            raise _RepeatedKey(f"{key} is given twice; write each key once")
        found[key] = value
    return found


def _int_or_text(loader: _Loader, node: yaml.ScalarNode):
    text = loader.construct_scalar(node)
    return int(text) if _PLAIN_INT.fullmatch(text) else text


def _decimal_or_text(loader: _Loader, node: yaml.ScalarNode):
    text = loader.construct_scalar(node)
    return Decimal(text) if _PLAIN_DECIMAL.fullmatch(text) else text


_Loader.add_constructor("tag:yaml.org,2002:int", _int_or_text)
_Loader.add_constructor("tag:yaml.org,2002:float", _decimal_or_text)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


def _refuse_json_constant(name: str):
    raise ValueError(f"{name} is not a number")


def _shown(value) -> str:
    """A value as the document wrote it: 20.0, true, '30'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, Decimal) else repr(value)


def _whole(value, info: ValidationInfo):
    """A count written as a whole number: not 20.0, "20" or true."""
    if type(value) is not int:
        raise ValueError(f"{info.field_name} is a whole number, not {_shown(value)}")
    return value


def _decimal(value, info: ValidationInfo):
    """A rate or multiplier: a number or a decimal string (shared.money.to_decimal), never a float
    (a caller's binary float) or a boolean."""
    if isinstance(value, float):
        raise ValueError(f"{info.field_name}: floats are not accepted for rates, use a decimal string")
    if not isinstance(value, bool) and isinstance(value, (int, str, Decimal)):
        try:
            return to_decimal(value, what=info.field_name)
        except MoneyError:
            pass
    raise ValueError(f"{info.field_name} is a decimal number, not {_shown(value)}")


def _day(value, info: ValidationInfo):
    """A campaign's date: exactly YYYY-MM-DD."""
    if isinstance(value, str):
        try:
            return parse_date(value)
        except ValueError:
            pass
    elif isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise ValueError(f"campaign {info.data.get('id', '?')}: {info.field_name} is a date YYYY-MM-DD, "
                     f"not {_shown(value)}")


Whole = Annotated[int, BeforeValidator(_whole)]
Rate = Annotated[Decimal, BeforeValidator(_decimal)]
Day = Annotated[date, BeforeValidator(_day)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# The largest rate or multiplier a document may set: above it one major unit earns more points than
# one event may move (MAX_POINTS). Checked when a document is saved (parse), not by the model, so a
# version stored before it was refused still reads back.
MAX_RATE = Decimal(MAX_POINTS)


def _too_large(what: str) -> str:
    return f"{what} is at most {MAX_RATE} (the most points one event moves)"


# Six places are checked in a context of their own, not the calling thread's (which could be narrower,
# round otherwise or trap Inexact): 28 digits, so a model's rate stays below 10^22 (the bound
# shared.rules.evaluate's precision is derived from), and only InvalidOperation trapped.
_SIX_PLACES = Context(prec=28, traps=[InvalidOperation])


def _rate(value: Decimal, what: str) -> Decimal:
    try:
        exact = value >= 0 and value == value.quantize(Decimal("0.000001"), context=_SIX_PLACES)
    except InvalidOperation:  # more than 28 digits with its 6 places: far above MAX_RATE
        raise ValueError(_too_large(what)) from None
    if not exact:
        raise ValueError(f"{what} must be non-negative with at most 6 decimal places")
    return value


def _rates(rules: "RuleSet") -> list[tuple[str, Decimal]]:
    """Every rate and multiplier of a document, each named as its refusal names it."""
    named = [] if rules.base_rate is None else [("base_rate", rules.base_rate)]
    named += [(f"multiplier of {key}", value) for multipliers in (rules.categories, rules.skus)
              for key, value in multipliers.items()]
    named += [(f"tier multiplier of {tier}", value) for tier, value in rules.tier_multipliers.items()]
    named += [(f"campaign {c.id}: multiplier", c.multiplier) for c in rules.campaigns if c.multiplier is not None]
    return named


class Campaign(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    starts_on: Day
    ends_on: Day
    weekdays: list[Whole] | None = Field(None, description="ISO weekdays 1 (Monday) … 7 (Sunday), network time zone")
    multiplier: Rate | None = Field(None, description="e.g. 2 for double points (applies to the base points)")
    bonus_points: Whole | None = Field(None, gt=0, description="a fixed bonus per qualifying earn")
    categories: list[str] | None = Field(None, description="only purchases (items) in these categories")
    funded_by: Literal["partner", "network"] = "partner"
    per_member_cap: Whole | None = Field(None, gt=0)
    campaign_cap: Whole | None = Field(None, gt=0)

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

    points: Whole = Field(gt=0, le=10**9, description="points per award")
    per_member_per_day: Whole | None = Field(None, gt=0, description="awards per member per network day")
    per_member_total: Whole | None = Field(None, gt=0, description="awards per member in all")

    @model_validator(mode="after")
    def _caps(self):
        if (self.per_member_per_day is not None and self.per_member_total is not None
                and self.per_member_per_day > self.per_member_total):
            raise ValueError("per_member_per_day cannot exceed per_member_total")
        return self


class Referral(Strict):
    """The referrer's bonus on a referred member's first qualifying earn."""

    bonus_points: Whole = Field(gt=0, le=10**9)
    min_spend: Whole = Field(0, ge=0, description="minor units the qualifying purchase must reach")
    funded_by: Literal["partner", "network"] = "partner"


class Limits(Strict):
    """Velocity limits, in points per network day (midnight in the network time zone)."""

    member_daily_earn: Whole | None = Field(None, gt=0, description="points one member may earn, all partners")
    member_daily_burn: Whole | None = Field(None, gt=0, description="points one member may spend, all partners")
    partner_daily_issuance: Whole | None = Field(None, gt=0, description="partner-funded points a partner may issue")


class RuleSet(Strict):
    base_rate: Rate | None = Field(None, description="points per major currency unit; default: the contract's")
    minimum_spend: Whole = Field(0, ge=0, description="minor units below which a purchase earns nothing")
    rounding: Literal["floor", "half_up", "half_even", "ceiling"] = "floor"
    categories: dict[str, Rate] = Field(default_factory=dict, description="category -> multiplier")
    skus: dict[str, Rate] = Field(default_factory=dict, description="SKU -> multiplier (wins over category)")
    campaigns: list[Campaign] = Field(default_factory=list)
    activities: dict[str, Activity] = Field(default_factory=dict, description="activity name -> points and caps")
    referral: Referral | None = None
    limits: Limits | None = None
    tier_multipliers: dict[str, Rate] = Field(
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


def syntax_problem(error: Exception, text: str) -> str:
    """Why the parser cannot read ``text``, in one line: the YAML parser's own text spans several (the
    offending source line, a caret under it); its problem and where it is (line and column, counted
    from 1) are kept. The command line, the dashboard and any problem+json answer give this line."""

    def at(mark) -> str:
        return f"line {mark.line + 1}, column {mark.column + 1}"

    if isinstance(error, yaml.MarkedYAMLError):
        where = f" at {at(error.problem_mark)}" if error.problem_mark else ""
        context = (f" ({error.context}" + (f" at {at(error.context_mark)}" if error.context_mark else "") + ")"
                   if error.context else "")
        return f"{error.problem or 'not valid YAML'}{where}{context}"
    if isinstance(error, ReaderError):  # a character YAML does not allow, e.g. a NUL
        before = text[:error.position]
        line, column = before.count("\n") + 1, error.position - (before.rfind("\n") + 1) + 1
        return f"{str(error).splitlines()[0]} at line {line}, column {column}"
    return " ".join(str(error).split())


def parse(text: str, *, network: bool = False) -> RuleSet:
    """Read a JSON or YAML rules document; refuse it with every problem named."""
    try:
        data = (yaml.load(text, Loader=_Loader) if not text.lstrip().startswith("{")
                else json.loads(text, parse_float=Decimal, parse_constant=_refuse_json_constant,
                                object_pairs_hook=_json_object))
    except _RepeatedKey as exc:
        raise ValidationFailed(f"the rules document is invalid: {exc}") from exc
    except (yaml.YAMLError, ValueError) as exc:
        raise ValidationFailed(f"the rules document is not valid JSON or YAML: {syntax_problem(exc, text)}") from exc
    except RecursionError:  # brackets nested beyond the parser's depth (the size limit allows 100,000 levels)
        raise ValidationFailed("the rules document is invalid: it is nested too deeply to be read (a rules "
                               "document is a few levels deep)") from None
    if data is None:  # an empty document (or only comments): no rules
        data = {}
    if not isinstance(data, dict):
        raise ValidationFailed(f"the rules document is invalid: the document is a mapping of fields "
                               f"(base_rate: 2, campaigns: [...]), not {_shown(data)}")
    try:
        rules = RuleSet.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'document'}: "
                             f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
        raise ValidationFailed(f"the rules document is invalid: {problems}") from exc
    too_large = [what for what, value in _rates(rules) if value > MAX_RATE]
    if too_large:  # checked here, not in the model: a version stored before this was refused still reads back
        raise ValidationFailed(f"the rules document is invalid: {'; '.join(_too_large(w) for w in too_large)}")
    if "" in rules.categories or any("" in (c.categories or ()) for c in rules.campaigns):
        # checked here, not in the model (as below): an item without a category is in no category, so an
        # empty name would match only items sent with category "" — never what a document means
        raise ValidationFailed("the rules document is invalid: a category name is empty; an item without a "
                               "category earns the base rate and is in no campaign's categories")
    for campaign in rules.campaigns:
        # checked here, not in the model: a version stored before this was refused still reads back
        if campaign.categories == []:
            raise ValidationFailed(f"campaign {campaign.id}: categories is empty, so the campaign would never "
                                   "apply; leave categories out for a campaign on every purchase")
        repeated = [c for c in dict.fromkeys(campaign.categories or ()) if campaign.categories.count(c) > 1]
        if repeated:  # read back (stored before this was refused), each category counts once (rules.evaluate)
            raise ValidationFailed(f"the rules document is invalid: campaign {campaign.id}: categories lists "
                                   f"{', '.join(repeated)} more than once; list each category once")
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
