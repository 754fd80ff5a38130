"""Checks a user runs on demand (integrity, a run's files, a partner's log): read, then audit.

The check runs in a read-only unit of work — a write unit would hold SQLite's write lock, and a
PostgreSQL transaction open, for as long as a check of the whole ledger takes — and the audit entry
with its result commits in a short unit right after. A check that fails to finish changes nothing
and is not recorded.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from shared.access import audit

T = TypeVar("T")


def read_then_audit(network, actor: Any, action: str, target: str | None, read: Callable[[Any], T],
                    summary: Callable[[T], dict]) -> T:
    result = network.tx(read, readonly=True)
    network.tx(lambda tx: audit.record(tx, actor, action, target, **summary(result)))
    return result
