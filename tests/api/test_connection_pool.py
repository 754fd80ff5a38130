"""An API process works on at most as many requests at once as its connection pool holds, so a
burst of concurrent requests reuses the pool's connections instead of opening one per request."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import event, text

from services.partner_api.app import create_app
from shared.network import Network
from tests.api.conftest import Partner, Server
from tests.factories import make_member

POOL = 3
REQUESTS = 48


def test_concurrent_requests_reuse_the_pools_connections(settings, database_url, clock):
    network = Network(settings, database_url=database_url, clock=clock, pool_size=POOL)
    opened: list[int] = []
    event.listen(network.db.engine, "connect", lambda *_: opened.append(1))
    try:
        with Server(create_app(network)) as base_url:
            partner = Partner(network, base_url)
            members = [make_member(network, partner.partner_id) for _ in range(4)]
            before = len(opened)

            def earn(n: int) -> int:
                response = partner.call("POST", "/v1/earn", {"member_id": members[n % 4], "reference": f"P{n}",
                                                            "amount": 1000 + n})
                return response.status_code

            with ThreadPoolExecutor(16) as pool:  # more clients at once than the pool holds
                statuses = list(pool.map(earn, range(REQUESTS)))
            partner.http.close()
        assert statuses == [200] * REQUESTS
        # every earn answered, and no connection was opened beyond the pool's own
        assert len(opened) <= POOL, f"{len(opened)} connections opened for a pool of {POOL} ({before} before the burst)"
        assert network.tx(lambda tx: tx.session.execute(
            text("SELECT count(*) FROM entries WHERE reference LIKE 'P%'")).scalar_one()) == REQUESTS
    finally:
        network.close()
