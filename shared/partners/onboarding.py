"""Onboarding a partner, as `pointsnet partners add` and the dashboard's form both do it: the partner, its
first contract version, its first key when one is given, and its limits, in the caller's unit of work. A
prepaid partner's float is enforced from the start, by default with no overdraft (docs/operations.md,
"Finance limits and alerts"): written once here, so that no way of onboarding leaves it out."""

from __future__ import annotations

from shared.db.database import Tx
from shared.partners import keys
from shared.partners.contracts import ContractTerms, create_partner
from shared.partners.limits import set_limits


def onboard(tx: Tx, name: str, terms: ContractTerms, *, public_key: str | None = None,
            float_overdraft_minor: int | None = 0, exposure_limit_minor: int | None = None) -> dict:
    """The created partner (``partner_id``, …; ``key_id`` with a key, ``limits`` when any was set).
    ``float_overdraft_minor``: how far a prepaid partner's float may go below zero (None: no float limit);
    a postpaid partner has no float, and it is not read."""
    created = create_partner(tx, name, terms)
    if public_key is not None:  # an empty key too: refused as a key, never a partner registered without one
        created["key_id"] = keys.add_key(tx, created["partner_id"], public_key)["key_id"]
    overdraft = float_overdraft_minor if terms.billing == "prepaid" else None
    if overdraft is not None or exposure_limit_minor is not None:
        created["limits"] = set_limits(tx, created["partner_id"], float_overdraft_minor=overdraft,
                                       exposure_limit_minor=exposure_limit_minor)
    return created
