"""A rules document is read strictly: a campaign's dates are exactly YYYY-MM-DD, counts are whole
numbers, rates and multipliers are decimals read from the digits written (never a binary float or a
boolean), and a campaign with an empty category list is refused rather than stored never to apply."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert

from shared.db.types import new_id
from shared.errors import ValidationFailed
from shared.ledger.events import Event
from shared.models import EarnRuleSet
from shared.rules.document import RuleSet, parse
from shared.rules.evaluate import PurchaseItem
from shared.rules.store import rules_in_force, set_rules
from tests.factories import make_member, make_partner

CAMPAIGN = "{{id: weekend, name: Weekend, starts_on: {starts}, ends_on: {ends}, multiplier: 2}}"


def campaign_yaml(starts="2026-11-01", ends="2026-11-30", extra="") -> str:
    return "campaigns: [" + CAMPAIGN.format(starts=starts, ends=ends)[:-1] + extra + "}]"


def campaign_json(starts, ends='"2026-11-30"') -> str:
    return ('{"campaigns": [{"id": "weekend", "name": "Weekend", "starts_on": %s, "ends_on": %s, '
            '"multiplier": 2}]}' % (starts, ends))


def refusal(document: str) -> str:
    with pytest.raises(ValidationFailed) as refused:
        parse(document)
    message = str(refused.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("starts", ["0", "20261101", '"2026-11-01T00:00:00Z"', '"20261101"', '"2026-W44-7"',
                                    '"2026-11-1"', "true", "null", '"2026-11-01 "'])
def test_json_campaign_dates_are_exactly_yyyy_mm_dd(starts):
    message = refusal(campaign_json(starts))
    assert "campaign weekend: starts_on is a date YYYY-MM-DD" in message, message


@pytest.mark.parametrize("starts", ["2026-11-01 00:00:00", "2026-11-01T00:00:00Z", "2026-11-01t08:00:00+08:00",
                                    "'20261101'", "2026-W44-7", "1762000000", "!!timestamp 2026-1-5",
                                    "2026-11-01T00:00:00.5Z"])
def test_yaml_campaign_dates_are_exactly_yyyy_mm_dd(starts):
    message = refusal(campaign_yaml(starts=starts))
    assert "campaign weekend: starts_on is a date YYYY-MM-DD" in message, message


def test_the_end_date_is_named_too():
    message = refusal(campaign_json('"2026-11-01"', ends="0"))
    assert "campaign weekend: ends_on is a date YYYY-MM-DD, not 0" in message, message


@pytest.mark.parametrize("document", [campaign_yaml(), campaign_yaml(starts="'2026-11-01'", ends='"2026-11-30"'),
                                      campaign_json('"2026-11-01"')])
def test_a_date_written_yyyy_mm_dd_is_read_as_that_day(document):
    [campaign] = parse(document).campaigns
    assert (campaign.starts_on, campaign.ends_on) == (date(2026, 11, 1), date(2026, 11, 30))
    assert type(campaign.starts_on) is date


def test_an_empty_category_list_is_refused():
    message = refusal(campaign_yaml(extra=", categories: []"))
    assert "campaign weekend" in message and "leave categories out for a campaign on every purchase" in message
    assert parse(campaign_yaml(extra=", categories: [tea]")).campaigns[0].categories == ["tea"]


def test_a_version_stored_with_an_empty_category_list_still_reads_back(network, clock):
    """Stored versions are read as they were stored (the refusal is of new documents): an earn under
    one still posts, the campaign applying to nothing as before."""
    partner = make_partner(network)
    member = make_member(network, partner)
    stored = ('{"base_rate":"1","campaigns":[{"categories":[],"id":"weekend","multiplier":"2","name":"W",'
              '"starts_on":"2026-01-01","ends_on":"2030-12-31"}]}')
    network.tx(lambda tx: tx.session.execute(insert(EarnRuleSet.__table__).values(
        id=new_id("rul"), scope=partner, version=1, effective_from=tx.now - timedelta(days=1),
        document=stored, created_at=tx.now)))
    version, rules = network.tx(lambda tx: rules_in_force(tx, partner, tx.now), readonly=True)
    assert version == 1 and rules.campaigns[0].categories == []
    earned = network.earn(partner, member, "o-1", amount=10_000)
    assert [line["rule"] for line in earned["breakdown"]] == ["base_rate"]


@pytest.mark.parametrize("document, field", [
    (campaign_yaml(extra=", weekdays: [true]"), "weekdays"),  # true was read as 1, Monday
    (campaign_yaml(extra=", weekdays: ['6']"), "weekdays"),
    (campaign_yaml(extra=", weekdays: [6.0]"), "weekdays"),
    ("campaigns: [{id: t, name: T, starts_on: 2026-11-01, ends_on: 2026-11-30, bonus_points: 20.0}]", "bonus_points"),
    ("campaigns: [{id: t, name: T, starts_on: 2026-11-01, ends_on: 2026-11-30, bonus_points: '20'}]", "bonus_points"),
    (campaign_yaml(extra=", per_member_cap: 30.5"), "per_member_cap"),
    (campaign_yaml(extra=", campaign_cap: true"), "campaign_cap"),
    ("minimum_spend: 10.0", "minimum_spend"),
    ("minimum_spend: 010", "minimum_spend"),  # YAML 1.1 reads 010 as 8
    ("minimum_spend: 1:30", "minimum_spend"),  # and 1:30 as 90
    ("minimum_spend: 0x10", "minimum_spend"),
    ('{"minimum_spend": 1e3}', "minimum_spend"),
    ("activities: {survey: {points: 5.0}}", "points"),
    ("activities: {survey: {points: 5, per_member_per_day: yes}}", "per_member_per_day"),
    ("referral: {bonus_points: '500'}", "bonus_points"),
    ("referral: {bonus_points: 500, min_spend: 50.00}", "min_spend"),
    ("limits: {partner_daily_issuance: true}", "partner_daily_issuance"),
])
def test_counts_are_whole_numbers(document, field):
    message = refusal(document)
    assert f"{field} is a whole number" in message, message


@pytest.mark.parametrize("document, field", [
    ("base_rate: true", "base_rate"),
    ("base_rate: .inf", "base_rate"),
    ("base_rate: 1:30", "base_rate"),
    ("categories: {books: yes}", "categories"),
    ('{"skus": {"GIFT": false}}', "skus"),
    ("tier_multipliers: {gold: on}", "tier_multipliers"),
    (campaign_yaml().replace("multiplier: 2", "multiplier: true"), "multiplier"),
])
def test_rates_and_multipliers_are_decimal_numbers(document, field):
    message = refusal(document)
    assert f"{field} is a decimal number" in message, message


@pytest.mark.parametrize("document", ["base_rate: 1.00000000000000001", '{"base_rate": 1.00000000000000001}',
                                      "categories: {tea: 1.0000000000000000001}"])
def test_a_rate_is_read_from_its_digits_not_through_a_float(document):
    """A binary float would round 1.00000000000000001 to 1.0 and store a rate nobody wrote; read as
    written it has more than six decimal places and is refused."""
    assert "at most 6 decimal places" in refusal(document)


@pytest.mark.parametrize("document, field", [
    ("base_rate: 1e30\n", "base_rate"),
    ('{"base_rate": 1e30}', "base_rate"),
    ("categories: {tea: 1.0e+40}\n", "multiplier of tea"),
    ('tier_multipliers: {gold: "1e29"}\n', "tier multiplier of gold"),
    ("skus: {GIFT: 1000000000000.000001}\n", "multiplier of GIFT"),
    (campaign_yaml().replace("multiplier: 2", "multiplier: 1e13"), "multiplier"),
])
def test_a_rate_above_the_most_points_one_event_moves_is_refused(document, field):
    """A rate or multiplier above 10**12 (MAX_POINTS: one major unit would earn more than one event
    may move) is refused naming the field, a clear one-line refusal: not decimal.InvalidOperation
    from rounding beyond 28 digits, which pydantic does not turn into a refusal."""
    message = refusal(document)
    assert f"{field} is at most 1000000000000" in message, message


def test_a_rate_of_the_most_points_one_event_moves_is_accepted():
    rules = parse("base_rate: 1000000000000\ncategories: {tea: '1000000000000.000000'}\n")
    assert rules.base_rate == Decimal(10**12) and rules.categories == {"tea": Decimal(10**12)}


def test_a_version_stored_with_a_rate_above_the_bound_still_reads_back():
    """The bound is checked when a document is saved, not by the model: a version stored before it
    was refused still reads back (and earns what it always did: refusals above MAX_POINTS)."""
    stored = RuleSet.model_validate_json('{"base_rate": "10000000000000"}')
    assert stored.base_rate == Decimal(10**13)


@pytest.mark.parametrize("document", ["[]\n", "[]", "false\n", "0\n", "base_rate\n", "- base_rate: 2\n"])
def test_a_document_that_is_not_a_mapping_is_refused(document):
    """Only an empty document is an empty rule set: a list, false or 0 (once read as one too) is
    refused, so that saving it cannot wipe the partner's rates and campaigns."""
    assert "the document is a mapping of fields" in refusal(document)


@pytest.mark.parametrize("document", ["", "\n", "# nothing yet\n", "{}"])
def test_an_empty_document_is_an_empty_rule_set(document):
    assert parse(document) == RuleSet()


@pytest.mark.parametrize("document", ['{"base_rate": NaN}', '{"base_rate": Infinity}'])
def test_json_constants_are_not_numbers(document):
    assert "not a number" in refusal(document)


def test_decimals_written_as_numbers_or_strings_are_exact():
    rules = parse("base_rate: 1.1\ncategories: {tea: 1.5, books: '2.25'}\ntier_multipliers: {gold: 1.000001}\n"
                  "skus: {GIFT-CARD: 0}")
    assert rules.base_rate == Decimal("1.1") and str(rules.base_rate) == "1.1"
    assert rules.categories == {"tea": Decimal("1.5"), "books": Decimal("2.25")}
    assert rules.tier_multipliers == {"gold": Decimal("1.000001")} and rules.skus == {"GIFT-CARD": Decimal(0)}
    json_rules = parse('{"base_rate": 1.1, "categories": {"tea": "1.5"}}')
    assert json_rules.base_rate == Decimal("1.1") and json_rules.categories == {"tea": Decimal("1.5")}


def test_a_caller_float_is_refused():
    with pytest.raises(ValueError, match="floats are not accepted"):
        RuleSet.model_validate({"base_rate": 1.1})


def test_yaml_forms_that_are_not_numbers_stay_names():
    """YAML 1.1 reads 010 as 8 and 2026-11-01 as a date; as a SKU or a campaign name they are the text."""
    rules = parse(campaign_yaml().replace("name: Weekend", "name: 2026-11-01") + "\nskus: {'010': 0}")
    assert rules.campaigns[0].name == "2026-11-01" and rules.skus == {"010": Decimal(0)}


def test_the_documented_example_is_accepted():
    rules = parse("""
base_rate: 1
minimum_spend: 1000
rounding: floor
categories:
  books: 2
  tea: 1.5
skus:
  GIFT-CARD: 0
tier_multipliers:
  gold: 1.5
  platinum: 2
campaigns:
  - id: weekend
    name: Double weekend
    starts_on: 2026-11-01
    ends_on: 2026-11-30
    weekdays: [6, 7]
    multiplier: 2
  - id: tea-week
    name: Tea week
    starts_on: 2026-11-16
    ends_on: 2026-11-22
    categories: [tea]
    bonus_points: 20
    funded_by: partner
    per_member_cap: 30
    campaign_cap: 100000
activities:
  survey:   {points: 50, per_member_per_day: 1, per_member_total: 5}
referral:
  bonus_points: 500
  min_spend: 5000
""")
    assert rules.categories["tea"] == Decimal("1.5") and rules.campaigns[0].weekdays == [6, 7]
    assert rules.campaigns[1].starts_on == date(2026, 11, 16) and rules.referral.min_spend == 5000


TWO_CAMPAIGNS = campaign_yaml() + "\nbase_rate: 1\ncampaigns: [{id: tea, name: Tea, starts_on: 2026-11-16, " \
                                  "ends_on: 2026-11-22, bonus_points: 20}]\n"


@pytest.mark.parametrize("document, key", [
    (TWO_CAMPAIGNS, "campaigns"),
    ("base_rate: 1\nminimum_spend: 100\nbase_rate: 2\n", "base_rate"),
    ("skus:\n  GIFT-CARD: 0\n  BOOK: 2\n  GIFT-CARD: 1\n", "GIFT-CARD"),
    (campaign_yaml(extra=", multiplier: 3"), "multiplier"),
    ("activities:\n  survey: {points: 5}\n  survey: {points: 500}\n", "survey"),
    ("referral: {bonus_points: 50, bonus_points: 5000}", "bonus_points"),
    ('{"base_rate": 1, "base_rate": 2}', "base_rate"),
    ('{"skus": {"GIFT-CARD": 0, "GIFT-CARD": 3}}', "GIFT-CARD"),
    ('{"campaigns": [{"id": "weekend", "name": "W", "starts_on": "2026-11-01", "ends_on": "2026-11-30", '
     '"multiplier": 2, "multiplier": 20}]}', "multiplier"),
], ids=["yaml-campaigns", "yaml-base_rate", "yaml-sku", "yaml-campaign-field", "yaml-activity", "yaml-referral",
        "json-base_rate", "json-sku", "json-campaign-field"])
def test_a_key_given_twice_is_refused_naming_it(document, key):
    """YAML and JSON keep the last of a repeated key: a second `campaigns:` section silently dropped
    the first. Read strictly, a key given twice, at any depth, is refused, naming it."""
    message = refusal(document)
    assert message.startswith("the rules document is invalid") and f"{key} is given twice" in message, message


def test_a_key_in_two_different_mappings_is_not_repeated():
    """The same field in two campaigns, or one name as a category and a SKU, are different keys."""
    rules = parse("categories: {tea: 2}\nskus: {tea: 0}\ncampaigns:\n"
                  "  - {id: weekend, name: W, starts_on: 2026-11-01, ends_on: 2026-11-30, multiplier: 2}\n"
                  "  - {id: tea, name: T, starts_on: 2026-11-16, ends_on: 2026-11-22, bonus_points: 20}\n")
    assert [c.id for c in rules.campaigns] == ["weekend", "tea"] and rules.skus == {"tea": Decimal(0)}


def test_a_second_campaigns_section_is_refused_and_nothing_stored(network, tmp_path):
    """Through ``pointsnet rules set``: one line, a non-zero exit, no version stored."""
    import json

    from tests.cli.inprocess import pointsnet

    env = {"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_DATABASE_URL": None}
    assert pointsnet("db", "upgrade", env=env).returncode == 0
    shop = json.loads(pointsnet("partners", "add", "Shop", env=env).stdout)["partner_id"]
    (tmp_path / "rules.yaml").write_text(TWO_CAMPAIGNS)
    done = pointsnet("rules", "set", "--partner", shop, str(tmp_path / "rules.yaml"), env=env)
    assert done.returncode != 0 and done.stderr.strip().count("\n") == 0, done.stderr
    assert "the rules document is invalid: campaigns is given twice" in done.stderr, done.stderr
    shown = pointsnet("rules", "show", "--partner", shop, env=env)
    assert shown.returncode != 0 and "no rules set" in shown.stderr


def test_a_category_listed_twice_is_refused_on_save_and_counted_once_in_a_stored_version(network, clock):
    """Saving a campaign that lists a category twice is refused; a version stored before that was
    refused still reads back, and its campaign gives (multiplier - 1) x the eligible base points once."""
    partner = make_partner(network)
    member = make_member(network, partner)
    twice = ("base_rate: 1\ncampaigns: [{id: b, name: B, starts_on: 2026-01-01, ends_on: 2030-12-31, "
             "categories: [books, books, books], multiplier: 2}]")
    with pytest.raises(ValidationFailed, match="campaign b: categories lists books more than once"):
        network.tx(lambda tx: set_rules(tx, partner, twice))
    stored = ('{"base_rate":"1","campaigns":[{"categories":["books","books","books"],"id":"b","multiplier":"2",'
              '"name":"B","starts_on":"2026-01-01","ends_on":"2030-12-31"}]}')
    network.tx(lambda tx: tx.session.execute(insert(EarnRuleSet.__table__).values(
        id=new_id("rul"), scope=partner, version=1, effective_from=tx.now - timedelta(days=1),
        document=stored, created_at=tx.now)))
    event = Event("earn", "o-1", member, amount=10_000, items=(PurchaseItem("X", "books", 10_000),))
    [earned] = network.post(partner, [event])
    assert [(line["rule"], line["points"]) for line in earned["breakdown"]] == [("base_rate", 100), ("campaign:b", 100)]
    assert network.balance(member)["available"] == 200
