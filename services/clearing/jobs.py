"""The scheduled jobs of the network, defined in code (in-memory job store)."""

from __future__ import annotations

from datetime import datetime, timezone

from shared.jobs.runner import Job
from shared.partners.keys import prune_nonces
from shared.partners.limits import check_exposure
from shared.network import Network
from shared.reports.delivery import publish_due


def ledger_jobs(network: Network) -> list[Job]:
    return [
        Job("hold_timeouts", 15, network.expire_holds),
        Job("settlement", 60, network.settle_due),
        Job("reports", 120, lambda: publish_due(network)),
        Job("lot_expiry", 300, network.expire_lots),
        Job("idempotency_pruning", 3600, network.prune_idempotency),
        Job("exposure_check", 3600, lambda: network.tx(check_exposure)),
        Job("nonce_pruning", 600, lambda: network.tx(lambda tx: prune_nonces(tx, datetime.now(timezone.utc)))),
    ]
