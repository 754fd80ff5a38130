"""Migration 0048: a webhook delivery may be cancelled. The deliveries and their attempts come through
the change of the status CHECK as they were (on SQLite the table is rebuilt, its attempts set aside),
the partial index of the pending ones with them; the downgrade drops the cancelled ones."""

from sqlalchemy import create_engine, text

from shared.db.database import normalise_url
from shared.webhooks.endpoints import set_endpoint
from tests.db.test_migrations import _migrate
from tests.factories import make_member, make_partner
from tests.webhooks.conftest import consent_cases

ATTEMPT = ("INSERT INTO webhook_attempts (delivery_id, attempted_at, status_code, error, duration_ms) "
           "VALUES (:d, '2026-11-20 10:00:00', 500, 'boom', 12)")


def _state(connection) -> dict:
    deliveries = dict(connection.execute(text("SELECT id, status FROM webhook_deliveries")).all())
    attempts = sorted(tuple(row) for row in connection.execute(text(
        "SELECT id, delivery_id, status_code, error FROM webhook_attempts")))
    if connection.dialect.name == "sqlite":
        index = connection.execute(text("SELECT sql FROM sqlite_master WHERE name = "
                                        "'ix_webhook_deliveries_endpoint_due'")).scalar()
    else:
        index = connection.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = "
                                        "'ix_webhook_deliveries_endpoint_due'")).scalar()
    return {"deliveries": deliveries, "attempts": attempts, "partial": index is not None and "WHERE" in index}


def test_0048_keeps_deliveries_and_attempts_and_its_downgrade_drops_the_cancelled(network, database_url):
    shop = make_partner(network, "Shop")
    network.tx(lambda tx: set_endpoint(tx, shop, "https://hooks.example/shop"))
    member = make_member(network, shop)
    network.earn(shop, member, "e1", points=5)
    network.earn(shop, member, "e2", points=7)
    network.db.engine.dispose()
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.begin() as connection:
            first, second = connection.execute(text(
                "SELECT id FROM webhook_deliveries ORDER BY id")).scalars().all()[-2:]
            connection.execute(text(ATTEMPT), {"d": first})
            connection.execute(text(ATTEMPT), {"d": second})
            before = _state(connection)
        _migrate(database_url, "0047", down=True)
        _migrate(database_url, "head")
        with engine.begin() as connection:
            after = _state(connection)
            connection.execute(text("UPDATE webhook_deliveries SET status = 'cancelled' WHERE id = :d"),
                               {"d": second})
        _migrate(database_url, "0047", down=True)
        with engine.connect() as connection:
            downgraded = _state(connection)
    finally:
        engine.dispose()
        _migrate(database_url, "head")
    assert before["partial"] and after == before
    assert set(before["deliveries"].values()) == {"pending"}
    assert downgraded["deliveries"] == {k: v for k, v in before["deliveries"].items() if k != second}
    assert downgraded["attempts"] == [a for a in before["attempts"] if a[1] != second]
    assert downgraded["partial"]


def test_0048_cancels_what_the_previous_release_left_pending_for_whom_it_may_not_reach(network, database_url):
    """The previous release left a member's pending deliveries as they were when the member withdrew its
    consent or was erased, and a terminated partner's about members: 0048 cancels each one a replay would
    refuse (docs/operations.md, Upgrades), and leaves the rest pending — the unlink's `member.unlinked`,
    the erasure's own `points.expired` and `member.erased`, another partner's and other members'."""
    from shared.webhooks.outbox import ERASED, TERMINATED, UNLINKED

    consent_cases(network, lambda p: network.tx(lambda tx: set_endpoint(tx, p, f"https://hooks.example/{p}")))
    network.db.engine.dispose()
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.begin() as connection:  # as the previous release left them: pending, no word why
            cancelled = dict(connection.execute(text(
                "SELECT id, last_error FROM webhook_deliveries WHERE status = 'cancelled'")).all())
            connection.execute(text("UPDATE webhook_deliveries SET status = 'pending', last_error = NULL "
                                    "WHERE status = 'cancelled'"))
            before = dict(connection.execute(text("SELECT id, status FROM webhook_deliveries")).all())
        _migrate(database_url, "0047", down=True)
        _migrate(database_url, "head")
        with engine.connect() as connection:
            after = {row.id: (row.status, row.last_error) for row in connection.execute(text(
                "SELECT id, status, last_error FROM webhook_deliveries"))}
            types = dict(connection.execute(text("SELECT id, event_type FROM webhook_deliveries")).all())
    finally:
        engine.dispose()
    assert sorted(cancelled.values()) == sorted([UNLINKED, ERASED, TERMINATED])
    assert set(before.values()) == {"pending"}
    assert {d: s for d, (s, _) in after.items() if s != "pending"} == {d: "cancelled" for d in cancelled}
    assert {d: why for d, (s, why) in after.items() if s == "cancelled"} == cancelled
    still = sorted(types[d] for d, (s, _) in after.items() if s == "pending")
    assert still.count("points.earned") == 2  # the ordinary member's, and the withdrawn member's to books
    assert {"member.unlinked", "member.erased", "points.expired"} <= set(still)
