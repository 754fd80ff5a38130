"""What a partner asks the ledger to do, as plain values (the API and batch files map onto these)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

KINDS = ("earn", "burn", "reversal", "hold", "capture", "void", "activity")
# the most points one event, adjustment or bonus moves (explicit or computed by the rules)
MAX_POINTS = 10**12


@dataclass(frozen=True)
class Event:
    kind: str
    reference: str | None = None
    member_id: str | None = None
    points: int | None = None
    amount: int | None = None  # purchase amount in minor units
    currency: str | None = None
    occurred_at: datetime | None = None
    original_reference: str | None = None
    hold_id: str | None = None
    items: tuple | None = None  # PurchaseItem lines of an earn
    activity: str | None = None  # an activity's name (points come from the partner's rules)

    def request(self) -> dict[str, Any]:
        """The business content that makes two requests 'the same' (reference replay, idempotency)."""
        content = {
            "kind": self.kind, "member_id": self.member_id, "points": self.points, "amount": self.amount,
            "currency": self.currency.upper() if self.currency else None,
            "occurred_at": self.occurred_at.astimezone(timezone.utc).isoformat() if self.occurred_at else None,
            "original_reference": self.original_reference, "hold_id": self.hold_id,
            "items": [[i.sku, i.category, i.amount, i.quantity] for i in self.items] if self.items else None,
            "activity": self.activity,
        }
        return {key: value for key, value in content.items() if value is not None}


def differences(stored: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return sorted(key for key in set(stored) | set(new) if stored.get(key) != new.get(key))
