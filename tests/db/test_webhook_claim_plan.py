"""A claim of due webhook deliveries reads each endpoint's first due rows, never the whole backlog.

The fair claim (each endpoint's oldest due delivery before anyone's second, at most
``CLAIM_PER_ENDPOINT`` of one) first ranked every due pending delivery with a window function: each
claim sorted the whole backlog (at 200,000 due deliveries over 50 endpoints, 730-780 ms a claim on
PostgreSQL, the sort spilling to disk; up to 40 claims a run). It now reads at most
``CLAIM_PER_ENDPOINT`` rows of each active endpoint off ``ix_webhook_deliveries_endpoint_due``
(endpoint, due time, id; pending rows only) and ranks only those. The test runs the claim itself,
captures its statement and, on PostgreSQL, asks the database to run it (``EXPLAIN ANALYZE``, rolled back), over a
backlog of a few thousand due rows and a delivered past, after ANALYZE: no sort or window is fed
more than the per-endpoint share of every endpoint (docs/benchmarks.md, "2026-12-06 (evening)").
SQLite has no LATERAL and gives no row counts: there the plan must read the index in a subquery run
per endpoint.
"""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import insert, text

from shared.db.database import make_engine
from shared.db.migrate import upgrade
from shared.models import Partner, WebhookDelivery, WebhookEndpoint
from shared.webhooks.delivery import CLAIM_PER_ENDPOINT, claim_due
from tests.db.migrating import downgrade
from tests.db.test_history_plans import analyzed, captured, plan

ENDPOINTS = 20
DUE_EACH = 200  # due pending deliveries of each endpoint: 4,000 in all
INDEX = "ix_webhook_deliveries_endpoint_due"


def _backlog(network, clock) -> None:
    """``ENDPOINTS`` endpoints with ``DUE_EACH`` due deliveries each (a second apart), as many delivered
    ones and a few not due yet; one more endpoint paused, one disabled, each with a backlog too."""
    now = clock.now()
    partners = [f"ptn_{n:03d}" for n in range(ENDPOINTS + 2)]
    endpoints = [f"whe_{n:03d}" for n in range(ENDPOINTS + 2)]
    rows = []
    for n, endpoint in enumerate(endpoints):
        for k in range(DUE_EACH):
            at = now - timedelta(hours=2, seconds=k * ENDPOINTS + n)
            base = {"id": f"whd_{n:03d}_{k:05d}", "endpoint_id": endpoint, "partner_id": partners[n],
                    "event_type": "points.earned", "body": "{}", "attempts": 0, "created_at": at,
                    "retry_from": at}
            rows.append(base | {"status": "pending", "next_attempt_at": at})
            rows.append(base | {"id": base["id"] + "d", "status": "delivered", "next_attempt_at": at,
                                "delivered_at": at})
            if k % 10 == 0:
                later = now + timedelta(hours=1)
                rows.append(base | {"id": base["id"] + "l", "status": "pending", "next_attempt_at": later})
    with network.db.engine.begin() as connection:
        connection.execute(insert(Partner), [{"id": p, "name": f"Shop {p}", "name_key": f"shop {p}", "status": "active",
                                              "created_at": now} for p in partners])
        connection.execute(insert(WebhookEndpoint), [
            {"id": e, "partner_id": p, "url": f"https://hooks.example.com/{p}", "secret": "whsec_x",
             "status": "disabled" if n == ENDPOINTS + 1 else "active", "created_at": now, "updated_at": now,
             "paused_until": now + timedelta(minutes=5) if n == ENDPOINTS else None, "pauses": 0}
            for n, (e, p) in enumerate(zip(endpoints, partners))])
        connection.execute(insert(WebhookDelivery), rows)
    analyzed(network, "webhook_endpoints", "webhook_deliveries")


def _nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def _run_plan(network, statement: str, parameters) -> dict:
    """The plan PostgreSQL ran the statement by, with each node's actual rows; rolled back."""
    with network.db.engine.connect() as connection:
        with connection.begin() as transaction:
            [[found]] = connection.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters).all()
            transaction.rollback()
    return (json.loads(found) if isinstance(found, str) else found)[0]["Plan"]


def test_a_claim_ranks_each_endpoints_first_due_rows_not_the_backlog(network, clock):
    _backlog(network, clock)
    with captured(network, "row_number()") as sent:
        claimed = network.tx(lambda tx: claim_due(tx))
    assert len(claimed) == 50 and {c.endpoint_id for c in claimed} == {f"whe_{n:03d}" for n in range(ENDPOINTS)}
    assert len(sent) == 1, sent
    if network.db.dialect != "postgresql":  # no row counts: the index is read per endpoint, by a subquery
        found = plan(network, *sent[0])
        assert "CORRELATED LIST SUBQUERY" in found, found
        assert f"USING INDEX {INDEX} (endpoint_id=? AND next_attempt_at<?)" in found, found
        return
    found = _run_plan(network, *sent[0])
    nodes = list(_nodes(found))
    share = CLAIM_PER_ENDPOINT * ENDPOINTS  # 240 of the 4,000 due rows
    fed = [(node["Node Type"], sum(child["Actual Rows"] * child["Actual Loops"] for child in node.get("Plans", [])))
           for node in nodes if node["Node Type"] in ("Sort", "Incremental Sort", "WindowAgg")]
    assert fed and all(rows <= share for _, rows in fed), (fed, json.dumps(found, indent=1))
    assert any(node.get("Index Name") == INDEX for node in nodes), json.dumps(found, indent=1)
    read = sum(node["Actual Rows"] * node["Actual Loops"] for node in nodes
               if node.get("Relation Name") == "webhook_deliveries" and node.get("Index Name") == INDEX)
    assert read <= share, json.dumps(found, indent=1)  # the index is read per endpoint, its first rows only


def _definition(url: str) -> str | None:
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                return connection.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"),
                                          {"n": INDEX}).scalar()
            return connection.execute(text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": INDEX}).scalar()
    finally:
        engine.dispose()


def test_0043_builds_the_due_index_of_pending_deliveries_and_its_downgrade_drops_it(database_url):
    downgrade(database_url, "0042")
    try:
        assert _definition(database_url) is None
    finally:
        upgrade(database_url)  # the next test's database, also when this one fails
    definition = _definition(database_url)
    assert definition is not None
    written = definition.replace("::text", "").replace("(", "").replace(")", "")  # PostgreSQL's casts
    assert "endpoint_id, next_attempt_at, id WHERE status = 'pending'" in written, definition
