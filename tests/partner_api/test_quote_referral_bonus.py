"""`POST /v1/earn/quote` answers the `referral_bonus` the earn with the same body would pay (its points
and who funds it; nothing is posted, so no transaction id), under the same condition: the referee's
first qualifying earn, while its referral is pending. Once the referral is paid a quote answers none."""

from __future__ import annotations

import pytest

from shared.rules.store import set_rules
from tests.partner_api.conftest import enrol, entry_count

PARTNER_FUNDED = "base_rate: 1\nreferral: {bonus_points: 500, min_spend: 5000}\n"
NETWORK_FUNDED = "base_rate: 1\nreferral: {bonus_points: 300, funded_by: network}\n"


def without_transaction(bonus: dict) -> dict:
    return {name: value for name, value in bonus.items() if name != "transaction_id"}


@pytest.mark.parametrize("rules,funded_by", [(PARTNER_FUNDED, "partner"), (NETWORK_FUNDED, "network")])
def test_the_quote_answers_the_referral_bonus_its_earn_then_pays(shop, network, rules, funded_by):
    network.tx(lambda tx: set_rules(tx, shop.partner_id, rules))
    referrer = enrol(shop)
    referee = enrol(shop, referrer_member_id=referrer)
    body = {"member_id": referee, "reference": "first", "amount": 6000}
    before = entry_count(network)
    quote = shop.ok("POST", "/v1/earn/quote", body)
    assert entry_count(network) == before  # the quote posts nothing
    earn = shop.ok("POST", "/v1/earn", body)
    assert earn["referral_bonus"]["funded_by"] == funded_by
    assert quote["referral_bonus"] == without_transaction(earn["referral_bonus"])
    assert quote["points"] == earn["points"]
    # the quote of the earn already posted under this reference answers what that earn paid
    assert shop.ok("POST", "/v1/earn/quote", body)["referral_bonus"] == quote["referral_bonus"]
    # the referral is paid: the next qualifying earn pays no bonus, and its quote says none
    later = {"member_id": referee, "reference": "second", "amount": 9000}
    assert shop.ok("POST", "/v1/earn/quote", later)["referral_bonus"] is None
    assert shop.ok("POST", "/v1/earn", later).get("referral_bonus") is None


def test_a_quote_below_the_minimum_spend_or_without_referral_answers_none(shop, network):
    network.tx(lambda tx: set_rules(tx, shop.partner_id, PARTNER_FUNDED))
    referrer = enrol(shop)
    referee, unreferred = enrol(shop, referrer_member_id=referrer), enrol(shop)
    small = {"member_id": referee, "reference": "small", "amount": 4999}
    assert shop.ok("POST", "/v1/earn/quote", small)["referral_bonus"] is None
    assert shop.ok("POST", "/v1/earn", small).get("referral_bonus") is None
    alone = {"member_id": unreferred, "reference": "alone", "amount": 9000}
    assert shop.ok("POST", "/v1/earn/quote", alone)["referral_bonus"] is None
    # still pending after the small earn: the qualifying one's quote names the bonus
    first = {"member_id": referee, "reference": "first", "amount": 5000}
    assert shop.ok("POST", "/v1/earn/quote", first)["referral_bonus"] == {"points": 500, "funded_by": "partner"}


def test_the_quotes_schema_documents_its_referral_bonus(shop):
    document = shop.http.get("/openapi.json").json()
    answer = document["paths"]["/v1/earn/quote"]["post"]["responses"]["200"]["content"]["application/json"]
    schemas = document["components"]["schemas"]
    quote = schemas[answer["schema"]["$ref"].rsplit("/", 1)[1]]
    field = quote["properties"]["referral_bonus"]
    assert field.get("description")
    [ref] = [option["$ref"] for option in field["anyOf"] if "$ref" in option]
    bonus = schemas[ref.rsplit("/", 1)[1]]
    assert set(bonus["properties"]) == {"points", "funded_by"}
    assert set(bonus["properties"]["funded_by"]["enum"]) == {"partner", "network"}
