"""Helpers for the programme tests: rules as data, alerts, ledger counts."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from shared.alerts import list_alerts
from shared.models import Entry, ObligationLine
from shared.rules.store import set_rules

# The API server fixtures (real uvicorn, signed requests) live with the partner API tests.
from tests.partner_api.conftest import api, make_network, partners, serve, shop  # noqa: F401


def rules(network, scope: str, text: str) -> dict:
    return network.tx(lambda tx: set_rules(tx, scope, text))


def alerts(network, kind: str = "velocity_limit") -> list[dict]:
    return [a for a in network.tx(list_alerts, readonly=True) if a["kind"] == kind]


def entries(network, **where) -> int:
    def count(tx):
        query = select(func.count()).select_from(Entry)
        for column, value in where.items():
            query = query.where(getattr(Entry, column) == value)
        return tx.session.execute(query).scalar_one()
    return network.tx(count, readonly=True)


def lines_of(network, entry_id: str) -> list[tuple]:
    return network.tx(lambda tx: [tuple(r) for r in tx.session.execute(
        select(ObligationLine.payer, ObligationLine.payee, ObligationLine.kind, ObligationLine.points)
        .where(ObligationLine.entry_id == entry_id))], readonly=True)


@pytest.fixture
def limits(network):
    """Set the network's member limits (and optionally a default partner cap)."""
    def set_limits(**values) -> None:
        body = "\n".join(f"  {name}: {value}" for name, value in values.items())
        rules(network, "network", f"limits:\n{body}\n")
    return set_limits
