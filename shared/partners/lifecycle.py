"""A partner's life in the network: active, suspended, terminated.

Suspended: the API refuses its earns, burns and holds (403 ``partner_suspended``); its
points stay redeemable at other partners and settlement goes on. Terminated: suspended for
good, with a recorded final cycle (the cycle open at termination). The partner's outstanding
points stay redeemable elsewhere and, under ``keep_paying``, the issuer keeps reimbursing those
redemptions under its last contract: they appear on its statements in later cycles as usual.
"""

from __future__ import annotations

from sqlalchemy import func, select, update

from shared.db.database import Tx
from shared.errors import Conflict, ValidationFailed
from shared.ledger.cycles import cycle_date_for
from shared.models import Lot, Partner, Termination
from shared.partners.contracts import require_partner


class PartnerTerminated(Conflict):
    status, code, title = 403, "partner_terminated", "Partner has left the network"


def _termination(tx: Tx, partner_id: str) -> Termination | None:
    return tx.session.get(Termination, partner_id)


def is_terminated(tx: Tx, partner_id: str) -> bool:
    return _termination(tx, partner_id) is not None


def set_status(tx: Tx, partner_id: str, status: str) -> dict:
    """Suspend (``suspended``) or reactivate (``active``) a partner; a terminated partner stays out."""
    if status not in ("active", "suspended"):
        raise ValidationFailed(f"unknown partner status {status!r}")
    require_partner(tx, partner_id)
    if _termination(tx, partner_id) is not None:
        raise PartnerTerminated(f"partner {partner_id} was terminated; it cannot be {status} again")
    tx.session.execute(update(Partner).where(Partner.id == partner_id).values(status=status))
    return {"partner_id": partner_id, "status": status}


def terminate(tx: Tx, partner_id: str, *, settlement: str = "keep_paying") -> dict:
    """Terminate a partner now: its final cycle is the open one; its points stay redeemable elsewhere."""
    require_partner(tx, partner_id)
    if settlement != "keep_paying":
        raise ValidationFailed("only 'keep_paying' termination is supported: the issuer keeps reimbursing "
                               "redemptions of its outstanding points")
    existing = _termination(tx, partner_id)
    if existing is not None:
        return termination_json(existing) | {"recorded": False}
    outstanding = tx.session.execute(select(func.coalesce(func.sum(Lot.remaining), 0)).where(
        Lot.funder_partner_id == partner_id, Lot.remaining > 0, Lot.expires_at > tx.now)).scalar_one()
    row = Termination(partner_id=partner_id, final_cycle=cycle_date_for(tx.now, tx.settings),
                      settlement=settlement, outstanding_points=int(outstanding), recorded_at=tx.now)
    tx.session.add(row)
    tx.session.execute(update(Partner).where(Partner.id == partner_id).values(status="suspended"))
    tx.session.flush()
    return termination_json(row) | {"recorded": True}


def termination_json(row: Termination) -> dict:
    return {"partner_id": row.partner_id, "status": "terminated", "final_cycle": row.final_cycle.isoformat(),
            "settlement": row.settlement, "outstanding_points_at_termination": row.outstanding_points}


def lifecycle_status(tx: Tx) -> dict[str, str]:
    """Every partner's status as operators see it: active, suspended or terminated."""
    terminated = set(tx.session.scalars(select(Termination.partner_id)))
    return {pid: ("terminated" if pid in terminated else status)
            for pid, status in tx.session.execute(select(Partner.id, Partner.status))}
