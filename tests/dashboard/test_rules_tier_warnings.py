"""The Rules tab flags a version in force (or scheduled) whose tier multipliers name a tier the tiers
configured now no longer have, and refuses saving tier multipliers while tiers are switched off."""

from __future__ import annotations

from shared.programme.config import TierConfig, TierLevel
from shared.rules.store import set_rules
from tests.dashboard.conftest import BASE, post_form


def test_the_rules_tab_warns_of_a_dropped_tier_and_refuses_multipliers_with_tiers_off(network, settings,
                                                                                      client_as, partners):
    coffee = partners["CoffeeCo"]
    network.tx(lambda tx: set_rules(tx, coffee, "base_rate: 1\ntier_multipliers: {silver: 2, gold: 3}\n"))
    client = client_as("operator")
    rules = f"{BASE}/partners/{coffee}/rules"
    assert 'data-testid="rules-warning"' not in client.get(rules).text

    settings.tiers = TierConfig(levels=(TierLevel(name="regular", threshold=0),
                                        TierLevel(name="silver", threshold=1000)))
    page = client.get(rules).text
    assert 'data-testid="rules-warning" data-version="1"' in page
    assert "gold is no longer a tier (the tiers are regular, silver)" in page
    assert 'data-testid="rules-warning"' in client_as("finance").get(rules).text

    settings.tiers = TierConfig(enabled=False)
    refused = post_form(client, rules, {"document": "base_rate: 1\ntier_multipliers: {silver: 2}\n"}, page=rules)
    assert refused.status_code == 422 and 'data-code="tiers_switched_off"' in refused.text
