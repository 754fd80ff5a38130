"""The Rules tab's warnings about a version in force or scheduled that names a tier the tiers
configured now no longer have are shown whatever page of the versions is shown: the list is paged,
and the version at fault may be on another page than the one read."""

from __future__ import annotations

import re
from datetime import timedelta

from shared.programme.config import TierConfig, TierLevel
from shared.rules.store import rules_naming_unknown_tiers, set_rules
from tests.dashboard.conftest import BASE

WITH_GOLD = "base_rate: 1\ntier_multipliers: {silver: 2, gold: 3}\n"
NO_GOLD = TierConfig(levels=(TierLevel(name="regular", threshold=0), TierLevel(name="silver", threshold=1000)))


def _warned(html: str) -> set[str]:
    return set(re.findall(r'data-testid="rules-warning" data-version="(\d+)"', html))


def _shown(html: str) -> list[str]:
    return re.findall(r'<tr data-version="(\d+)">', html)


def test_every_version_in_force_or_scheduled_is_warned_of_on_every_page(network, settings, clock,
                                                                       client_as, partners):
    coffee = partners["CoffeeCo"]
    network.tx(lambda tx: set_rules(tx, coffee, WITH_GOLD))  # version 1, replaced by 2
    clock.advance(minutes=1)
    network.tx(lambda tx: set_rules(tx, coffee, WITH_GOLD))  # version 2, in force
    network.tx(lambda tx: set_rules(tx, coffee, "base_rate: 1\ntier_multipliers: {silver: 2}\n",
                                    tx.now + timedelta(days=3)))  # version 3, scheduled
    network.tx(lambda tx: set_rules(tx, partners["BookMart"], WITH_GOLD))  # another partner's: not on this tab
    settings.tiers = NO_GOLD
    checked = [f["version"] for f in network.tx(rules_naming_unknown_tiers, readonly=True) if f["scope"] == coffee]
    assert checked == [2]

    client = client_as("finance")
    rules = f"{BASE}/partners/{coffee}/rules"
    for offset, shown in ((0, ["3"]), (1, ["2"]), (2, ["1"])):
        page = client.get(rules, params={"offset": offset, "limit": 1})
        assert page.status_code == 200
        assert _shown(page.text) == shown
        assert _warned(page.text) == {"2"}, (offset, _warned(page.text))
        assert "gold is no longer a tier (the tiers are regular, silver)" in page.text
    # the row of the version at fault is marked where it is shown; the replaced one is not
    assert "⚠" in client.get(rules, params={"offset": 1, "limit": 1}).text
    assert "⚠" not in client.get(rules, params={"offset": 2, "limit": 1}).text


def test_a_scheduled_version_on_a_later_page_is_warned_of_on_the_first(network, settings, client_as, partners):
    coffee = partners["CoffeeCo"]
    network.tx(lambda tx: set_rules(tx, coffee, WITH_GOLD, tx.now + timedelta(days=3)))  # version 1, scheduled
    settings.tiers = NO_GOLD
    for _ in range(2):  # two later versions in force now, saved after gold was dropped
        network.tx(lambda tx: set_rules(tx, coffee, "base_rate: 2\n"))
    page = client_as("operator").get(f"{BASE}/partners/{coffee}/rules", params={"offset": 0, "limit": 1})
    assert _shown(page.text) == ["3"]
    assert _warned(page.text) == set()  # version 1 was superseded by version 2: it never takes effect


def test_the_tab_warns_of_nothing_when_every_version_names_configured_tiers(network, settings, client_as,
                                                                            partners):
    coffee = partners["CoffeeCo"]
    network.tx(lambda tx: set_rules(tx, coffee, WITH_GOLD))
    page = client_as("operator").get(f"{BASE}/partners/{coffee}/rules", params={"offset": 0, "limit": 1})
    assert _warned(page.text) == set()
