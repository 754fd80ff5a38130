"""Migration 0040 on a network whose webhook endpoints have deliveries: on SQLite it rebuilt
``webhook_endpoints`` (to add its CHECK), and the rebuild's ``DROP TABLE`` was refused by the foreign
key of ``webhook_deliveries`` (the network's connections enforce foreign keys): `db upgrade` stopped
at 0039 with "FOREIGN KEY constraint failed" and the network could not start. The upgrade and its
downgrade now run through the network's own engine (foreign keys on), as `pointsnet db upgrade` does."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from shared.db.database import make_engine, normalise_url
from shared.db.migrate import is_current, upgrade
from tests.db.migrating import downgrade


def _add_endpoint_with_delivery(connection) -> None:
    at = "2026-11-20 02:00:00"
    connection.execute(text("INSERT INTO partners (id, name, status, created_at) "
                            "VALUES ('ptn_w', 'Webhook Mart', 'active', :at)"), {"at": at})
    connection.execute(text(
        "INSERT INTO webhook_endpoints (id, partner_id, url, secret, status, created_at, updated_at) "
        "VALUES ('whe_1', 'ptn_w', 'https://hooks.example.com/p', 'whsec_x', 'active', :at, :at)"), {"at": at})
    connection.execute(text(
        "INSERT INTO webhook_deliveries (id, endpoint_id, partner_id, event_type, body, status, attempts, "
        "created_at, retry_from, next_attempt_at) VALUES ('whd_1', 'whe_1', 'ptn_w', 'points.earned', '{}', "
        "'pending', 0, :at, :at, :at)"), {"at": at})


def _endpoints(engine) -> list:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(
            "SELECT e.id, e.url, e.pauses, e.paused_until, d.id FROM webhook_endpoints e "
            "JOIN webhook_deliveries d ON d.endpoint_id = e.id"))]


def test_0040_upgrades_and_downgrades_a_network_whose_endpoints_have_deliveries(database_url):
    engine = create_engine(normalise_url(database_url))
    downgrade(database_url, "0039")
    try:
        with engine.begin() as connection:
            _add_endpoint_with_delivery(connection)
        upgrade(database_url)  # what `pointsnet db upgrade` runs
        assert is_current(database_url)
        assert _endpoints(engine) == [("whe_1", "https://hooks.example.com/p", 0, None, "whd_1")]
        with pytest.raises(IntegrityError):  # the CHECK is there
            with engine.begin() as connection:
                connection.execute(text("UPDATE webhook_endpoints SET pauses = -1 WHERE id = 'whe_1'"))
        with engine.begin() as connection:
            connection.execute(text("UPDATE webhook_endpoints SET pauses = 2 WHERE id = 'whe_1'"))

        downgrade(database_url, "0039")  # its downgrade keeps the rows too
        with engine.connect() as connection:
            kept = connection.execute(text("SELECT * FROM webhook_endpoints")).mappings().all()
        assert [(row["id"], "pauses" in row, "paused_until" in row) for row in kept] == [("whe_1", False, False)]
        upgrade(database_url)
        assert _endpoints(engine) == [("whe_1", "https://hooks.example.com/p", 0, None, "whd_1")]
    finally:
        engine.dispose()
        engine = make_engine(database_url, pool_size=1)
        with engine.begin() as connection:
            for table in ("webhook_deliveries", "webhook_endpoints", "partners"):
                connection.execute(text(f"DELETE FROM {table}"))
        engine.dispose()
        upgrade(database_url)  # the next test's database, also when this one fails
