"""The programme's scheduled work: each job walks its members in bounded transactions."""

from __future__ import annotations

from shared.programme import reminders, status, tiers


def review_tiers(network) -> int:
    """Downgrade (or confirm) every member whose tier anniversary plus grace has passed."""
    return network.until_done(lambda tx: tiers.review_due(tx, network.settings.programme_batch_size))


def _walk(network, batch) -> int:
    """One pass over the members by id, one bounded transaction per batch."""
    after, total = "", 0
    while after is not None:
        after, done = network.tx(lambda tx, after=after: batch(tx, after, network.settings.programme_batch_size))
        total += done
    return total


def recompute_statuses(network) -> int:
    """Recompute every member's activity status; returns how many changed."""
    return _walk(network, status.recompute_batch)


def remind_expiring(network) -> int:
    """Make the expiry reminders now due; returns how many were made."""
    return _walk(network, reminders.reminder_batch)
