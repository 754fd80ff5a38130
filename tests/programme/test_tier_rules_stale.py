"""Tier multipliers and the tiers configured: saving them while tiers are switched off is refused
with a stable code; a stored version that names a tier a later POINTSNET_TIERS dropped is flagged
(the Rules tab, ``rules_versions``' warnings, ``pointsnet rules check``/``show``)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.errors import ValidationFailed
from shared.programme.config import TierConfig, TierLevel
from shared.rules.store import (TiersSwitchedOff, rule_versions, rules_in_force, rules_naming_unknown_tiers,
                                set_rules)
from tests.factories import make_partner

MULTIPLIERS = "base_rate: 1\ntier_multipliers: {silver: 2, gold: 3}\n"
NO_GOLD = TierConfig(levels=(TierLevel(name="regular", threshold=0), TierLevel(name="silver", threshold=1000)))


def test_tier_multipliers_are_refused_while_tiers_are_switched_off(network, settings):
    partner = make_partner(network)
    settings.tiers = TierConfig(enabled=False)
    with pytest.raises(TiersSwitchedOff) as refused:
        network.tx(lambda tx: set_rules(tx, partner, MULTIPLIERS))
    assert isinstance(refused.value, ValidationFailed)
    assert refused.value.code == "tiers_switched_off" and refused.value.status == 422
    assert "tiers are switched off" in refused.value.detail
    assert network.tx(lambda tx: rules_in_force(tx, partner, tx.now), readonly=True) is None
    network.tx(lambda tx: set_rules(tx, partner, "base_rate: 1\n"))  # without multipliers: saved


def test_a_version_naming_a_dropped_tier_is_flagged(network, settings, clock):
    partner, other = make_partner(network), make_partner(network)
    network.tx(lambda tx: set_rules(tx, partner, MULTIPLIERS))
    network.tx(lambda tx: set_rules(tx, other, "base_rate: 1\ntier_multipliers: {silver: 2}\n"))
    assert network.tx(rules_naming_unknown_tiers, readonly=True) == []
    settings.tiers = NO_GOLD  # a later setting drops gold
    [flagged] = network.tx(rules_naming_unknown_tiers, readonly=True)
    assert (flagged["scope"], flagged["version"], flagged["status"]) == (partner, 1, "in_force")
    assert flagged["warnings"] == ["tier_multipliers: gold is no longer a tier (the tiers are regular, silver): "
                                   "its multiplier never applies"]
    rows, _ = network.tx(lambda tx: rule_versions(tx, partner), readonly=True)
    assert [(r["version"], r["warnings"]) for r in rows] == [(1, flagged["warnings"])]
    # a version saved now without gold replaces it: no warning on what is no longer in force
    clock.advance(minutes=1)
    network.tx(lambda tx: set_rules(tx, partner, "base_rate: 1\ntier_multipliers: {silver: 2}\n"))
    rows, _ = network.tx(lambda tx: rule_versions(tx, partner), readonly=True)
    assert [(r["version"], r["status"], r["warnings"]) for r in rows] == [(2, "in_force", []), (1, "replaced", [])]
    assert network.tx(rules_naming_unknown_tiers, readonly=True) == []
    settings.tiers = TierConfig(enabled=False)  # tiers off: every multiplier in force is flagged
    assert [(f["scope"], f["version"]) for f in network.tx(rules_naming_unknown_tiers, readonly=True)] == sorted(
        [(partner, 2), (other, 1)])


def test_a_scheduled_version_naming_a_dropped_tier_is_flagged(network, settings):
    partner = make_partner(network)
    network.tx(lambda tx: set_rules(tx, partner, MULTIPLIERS, tx.now + timedelta(days=3)))
    settings.tiers = NO_GOLD
    [flagged] = network.tx(rules_naming_unknown_tiers, readonly=True)
    assert (flagged["version"], flagged["status"]) == (1, "scheduled")
