"""The scheduled jobs of the network, defined in code (in-memory job store)."""

from __future__ import annotations

from datetime import datetime, timezone

from shared.jobs.runner import Job
from shared.ledger.outstanding import measure_outstanding
from shared.observability import set_liability
from shared.partners.keys import prune_nonces
from shared.partners.limits import check_exposure
from shared.network import Network
from shared.webhooks.delivery import deliver_due, prune_delivered
from shared.programme import jobs as programme
from shared.reports.delivery import publish_due


def ledger_jobs(network: Network) -> list[Job]:
    return [
        Job("hold_timeouts", 15, network.expire_holds),
        Job("ledger_sealing", 10, lambda: network.seal(search_all=False)),  # the checkpoint's pass searches all
        Job("ledger_checkpoint", 60, network.checkpoint),
        Job("settlement", 60, network.settle_due),
        Job("reports", 120, lambda: publish_due(network)),
        Job("lot_expiry", 300, network.expire_lots),
        Job("idempotency_pruning", 3600, network.prune_idempotency),
        Job("exposure_check", 3600, lambda: network.tx(check_exposure)),
        Job("outstanding_points", 60, lambda: set_liability(*measure_outstanding(network))),
        Job("webhook_delivery", 5, lambda: deliver_due(network)),
        Job("webhook_pruning", 3600, lambda: network.tx(prune_delivered)),
        Job("nonce_pruning", 600, lambda: network.tx(lambda tx: prune_nonces(tx, datetime.now(timezone.utc)))),
        Job("erased_pages", 60, network.retry_forgetting_erased_pages),  # SQLite: an erasure's WAL, emptied
        *programme_jobs(network),
    ]


def programme_jobs(network: Network) -> list[Job]:
    """Tiers, activity status and expiry reminders (shared/programme)."""
    return [
        Job("tier_review", 3600, lambda: programme.review_tiers(network)),
        Job("activity_status", 6 * 3600, lambda: programme.recompute_statuses(network)),
        Job("expiry_reminders", 3600, lambda: programme.remind_expiring(network)),
    ]
