"""Signed webhooks to partners (Standard Webhooks, ``v1`` HMAC and ``v1a`` Ed25519).

Public API for other modules: ``emit(tx, event_type, data, partner_ids=...)`` queues an
event in the caller's transaction (see ``shared/webhooks/outbox.py`` for who receives
what). ``EVENT_TYPES`` lists the types partners can receive.
"""

from shared.webhooks.outbox import EVENT_TYPES, emit

__all__ = ["EVENT_TYPES", "emit"]
