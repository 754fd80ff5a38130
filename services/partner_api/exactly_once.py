"""Idempotency-Key handling at the API: outcome stored in the business transaction.

Stored: successes and business refusals (409 conflicts such as insufficient_points,
points_already_spent, reference_conflict, and 422 velocity_limit_exceeded). Not stored:
authentication failures, validation failures, 404s, rate limits, request_in_progress,
5xx, and the 403s partner_suspended and partner_terminated. Those two are Conflicts by
class, met by the posting when the partner was suspended (or left) after the door let the
request in; kept, a suspension's 403 would be replayed after the reactivation for the key's
whole retention. Nor 409 cycle_closed: a refusal about the network's timing (a cycle an
operator closed before its day ended), not about the request; a unit that met a cycle closed at
midnight while it ran is run again and posts into the open cycle (``Database.run_in_transaction``).
So a corrected retry with the same key can still succeed.
"""

from __future__ import annotations

import threading
from typing import Callable

from shared.db.database import Tx, is_unique_violation
from shared.errors import (Conflict, CycleClosed, IdempotencyKeyReused, PartnerSuspended, PointsnetError,
                           RequestInProgress)
from shared.ledger import idempotency
from shared.network import Network
from shared.partners.lifecycle import PartnerTerminated

_inflight: set[tuple[str, str]] = set()
_inflight_lock = threading.Lock()


NOT_KEPT = (RequestInProgress, PartnerSuspended, PartnerTerminated, CycleClosed)  # Conflicts by class, not business refusals


def storable(error: PointsnetError) -> bool:
    """A refusal kept for the Idempotency-Key: a business refusal (docs/partner-integration.md, section 3)."""
    return isinstance(error, Conflict) and not isinstance(error, NOT_KEPT)


def execute(network: Network, partner_id: str, key: str, request: dict,
            operation: Callable[[Tx], tuple[int, dict]]) -> tuple[int, dict, bool]:
    """Run ``operation`` exactly once for (partner, key); returns (status, body, replayed)."""
    marker = (partner_id, key)
    # A twin that reaches this point while the first runs in this process answers at once. On SQLite that is
    # only a twin the door let in before the first began writing: one arriving later waits at the write lock
    # to record its nonce (auth.authenticate), so the first has finished and it gets the stored answer, as a
    # twin in another process does. On PostgreSQL every twin answers at once (idempotency.claim).
    with _inflight_lock:
        if marker in _inflight:
            raise RequestInProgress("a request with this Idempotency-Key is still running; retry shortly")
        _inflight.add(marker)
    try:
        try:
            return network.tx(lambda tx: _with_status(tx, partner_id, key, request, operation))
        except PointsnetError as error:
            if not storable(error):
                raise
            return _store_refusal(network, partner_id, key, request, error)
    finally:
        with _inflight_lock:
            _inflight.discard(marker)


def _with_status(tx: Tx, partner_id: str, key: str, request: dict, operation) -> tuple[int, dict, bool]:
    idempotency.claim(tx, partner_id, key)
    stored = idempotency.replay(tx, partner_id, key, request)
    if stored is not None:
        return stored
    status, body = operation(tx)
    idempotency.store(tx, partner_id, key, request, status, body)
    return status, body, False


def _store_refusal(network: Network, partner_id: str, key: str, request: dict,
                   error: PointsnetError) -> tuple[int, dict, bool]:
    """Keep ``error`` for the key, in a unit of its own (the refused one rolled back). Between the two units
    the key is free: a twin in another process may have taken it meanwhile. A twin running now, or one that
    kept another request under the key, leaves this refusal answered as it is and not kept: it is this
    request's true outcome, and the key now stands for the twin's (its retries are answered as the twin's,
    a different one refused as a reused key). A twin that kept this same request: its outcome is the key's."""
    body = error.to_problem()

    def unit(tx: Tx):
        try:
            idempotency.claim(tx, partner_id, key)
            stored = idempotency.replay(tx, partner_id, key, request)
        except (RequestInProgress, IdempotencyKeyReused):
            return error.status, body, False
        if stored is not None:
            return stored
        idempotency.store(tx, partner_id, key, request, error.status, body)
        return error.status, body, False

    try:
        return network.tx(unit)
    except Exception as exc:  # pragma: no cover - a twin stored first; the retry reads it
        if is_unique_violation(exc):
            return network.tx(lambda tx: idempotency.replay(tx, partner_id, key, request))
        raise
