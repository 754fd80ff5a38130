"""Two operators saving a scope's rules at the same moment each get the next version: saves of one
scope take turns (on PostgreSQL a lock on the scope until the save commits; on SQLite the one
writer), instead of both reading the same latest version and one failing on the unique version."""

import threading

import pytest
from sqlalchemy import select

from shared.models import EarnRuleSet
from shared.rules import store
from shared.rules.store import set_rules
from tests.factories import make_partner
from tests.interleave import Pause, overlap

PARTNER_RULES = "base_rate: {rate}\n"
NETWORK_RULES = ("campaigns: [{{id: city-{n}, name: City, starts_on: 2026-11-01, ends_on: 2026-11-30, "
                 "bonus_points: 10, funded_by: network}}]")


def versions(network, scope) -> list[int]:
    return sorted(network.tx(lambda tx: tx.session.scalars(
        select(EarnRuleSet.version).where(EarnRuleSet.scope == scope)).all(), readonly=True))


@pytest.mark.parametrize("scope", ["partner", "network"])
def test_a_save_waits_for_the_one_that_read_the_latest_version_first(network, monkeypatch, scope):
    """The first save pauses after it read the latest version, before it writes its own: the second
    must wait for it (unguarded on PostgreSQL it read the same version, wrote it and ended meanwhile)."""
    scope = make_partner(network) if scope == "partner" else "network"
    text = PARTNER_RULES if scope != "network" else NETWORK_RULES
    network.tx(lambda tx: set_rules(tx, scope, text.format(rate=1, n=0)))
    pause = Pause().after(monkeypatch, store, "canonical")  # called for the insert, after the read
    both = overlap(lambda: network.tx(lambda tx: set_rules(tx, scope, text.format(rate=2, n=1))),
                   lambda: network.tx(lambda tx: set_rules(tx, scope, text.format(rate=3, n=2))), pause)
    assert both.second_waited
    assert both.first["version"] == 2 and both.second["version"] == 3
    assert versions(network, scope) == [1, 2, 3]


@pytest.mark.postgres
def test_eight_operators_saving_at_once_get_eight_versions(network):
    """Eight concurrent saves of one partner's rules (and of the network's) all succeed, numbered
    1 to 8, each version holding the document that was saved with it."""
    partner = make_partner(network)
    saves = [(partner, PARTNER_RULES.format(rate=n)) for n in range(1, 9)]
    saves += [("network", NETWORK_RULES.format(n=n)) for n in range(1, 9)]
    start = threading.Barrier(len(saves))
    outcomes: dict[int, object] = {}

    def save(index: int, scope: str, text: str) -> None:
        start.wait(10)
        try:
            outcomes[index] = network.tx(lambda tx: set_rules(tx, scope, text))
        except Exception as exc:  # asserted below
            outcomes[index] = exc

    threads = [threading.Thread(target=save, args=(i, scope, text), daemon=True)
               for i, (scope, text) in enumerate(saves)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    failures = [outcome for outcome in outcomes.values() if isinstance(outcome, Exception)]
    assert failures == []
    for scope in (partner, "network"):
        assert versions(network, scope) == list(range(1, 9))
        assert sorted(o["version"] for o in outcomes.values() if o["scope"] == scope) == list(range(1, 9))
    stored = network.tx(lambda tx: {(row.scope, row.version): row.document for row in tx.session.execute(
        select(EarnRuleSet.scope, EarnRuleSet.version, EarnRuleSet.document))}, readonly=True)
    assert len(set(stored.values())) == 16  # every save kept its own document
