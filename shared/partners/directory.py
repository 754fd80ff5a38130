"""Partners as operators look them up: a page of the directory, one partner, its contract versions.

Read side only; every list is a page (offset and limit in SQL) with its total.
"""

from __future__ import annotations

from sqlalchemy import func, select

from shared.db.database import Tx
from shared.errors import UnknownPartner
from shared.ledger.cycles import cycle_date_for
from shared.models import Contract, Partner, PartnerKey, Termination, WebhookEndpoint
from shared.money import micro_to_minor_decimal, ppm_to_rate


def terms_view(row) -> dict:
    """A contract version's terms as people write them (the inverse of ContractTerms.to_columns)."""
    return {"contract_id": row.id, "version": row.version, "effective_from": row.effective_from.isoformat(),
            "billing": row.billing, "point_value": str(micro_to_minor_decimal(row.point_value_micro)),
            "issuance_fee": str(micro_to_minor_decimal(row.issuance_fee_micro)),
            "redemption_fee_rate": str(ppm_to_rate(row.redemption_fee_ppm)),
            "breakage_share": str(ppm_to_rate(row.breakage_share_ppm)),
            "base_rate": str(ppm_to_rate(row.base_rate_micro)), "created_at": row.created_at.isoformat()}


def _current_contract(cycle_date):
    """The id of each partner's contract version in force on ``cycle_date`` (a correlated subquery)."""
    inner = Contract.__table__.alias("c_now")
    return (select(inner.c.id).where(inner.c.partner_id == Partner.id, inner.c.effective_from <= cycle_date)
            .order_by(inner.c.effective_from.desc()).limit(1).correlate(Partner).scalar_subquery())


def partners_page(tx: Tx, *, offset: int = 0, limit: int = 50, name: str | None = None) -> tuple[list[dict], int]:
    """Partners by name: status (active, suspended, terminated), billing in force, active keys, webhook."""
    today = cycle_date_for(tx.now, tx.settings)
    active_keys = (select(func.count()).select_from(PartnerKey)
                   .where(PartnerKey.partner_id == Partner.id, PartnerKey.status == "active")
                   .correlate(Partner).scalar_subquery())
    query = (select(Partner.id, Partner.name, Partner.status, Partner.created_at, Contract.billing,
                    active_keys.label("active_keys"), WebhookEndpoint.status.label("webhook"),
                    Termination.partner_id.label("terminated"))
             .select_from(Partner)
             .outerjoin(Contract, Contract.id == _current_contract(today))
             .outerjoin(WebhookEndpoint, WebhookEndpoint.partner_id == Partner.id)
             .outerjoin(Termination, Termination.partner_id == Partner.id))
    counted = select(func.count()).select_from(Partner)
    if name:
        pattern = "%" + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(Partner.name.ilike(pattern, escape="\\"))
        counted = counted.where(Partner.name.ilike(pattern, escape="\\"))
    rows = tx.session.execute(query.order_by(Partner.name, Partner.id).offset(offset).limit(limit)).all()
    return ([{"partner_id": r.id, "name": r.name, "status": "terminated" if r.terminated else r.status,
              "billing": r.billing, "active_keys": int(r.active_keys or 0), "webhook": r.webhook,
              "created_at": r.created_at.isoformat()} for r in rows],
            int(tx.session.execute(counted).scalar_one()))


def partner_profile(tx: Tx, partner_id: str) -> dict:
    """One partner: name, status, the contract in force now and the latest version."""
    row = tx.session.execute(select(Partner).where(Partner.id == partner_id)).scalar_one_or_none()
    if row is None:
        raise UnknownPartner(f"no partner {partner_id}")
    today = cycle_date_for(tx.now, tx.settings)
    current = tx.session.execute(select(Contract).where(
        Contract.partner_id == partner_id, Contract.effective_from <= today)
        .order_by(Contract.effective_from.desc()).limit(1)).scalar_one_or_none()
    latest = tx.session.execute(select(Contract).where(Contract.partner_id == partner_id)
                                .order_by(Contract.version.desc()).limit(1)).scalar_one_or_none()
    terminated = tx.session.get(Termination, partner_id)
    return {"partner_id": row.id, "name": row.name, "status": "terminated" if terminated else row.status,
            "created_at": row.created_at.isoformat(), "cycle_date": today.isoformat(),
            "contract": terms_view(current) if current else None,
            "latest_contract": terms_view(latest) if latest else None}


def contract_versions(tx: Tx, partner_id: str, *, offset: int = 0, limit: int = 50) -> tuple[list[dict], int]:
    """A partner's contract versions, newest first."""
    rows = tx.session.execute(select(Contract).where(Contract.partner_id == partner_id)
                              .order_by(Contract.version.desc()).offset(offset).limit(limit)).scalars().all()
    total = tx.session.execute(select(func.count()).select_from(Contract)
                               .where(Contract.partner_id == partner_id)).scalar_one()
    return [terms_view(r) for r in rows], int(total)


def keys_page(tx: Tx, partner_id: str, *, offset: int = 0, limit: int = 50) -> tuple[list[dict], int]:
    """A partner's keys, active first then newest first (shared.partners.keys manages them)."""
    rows = tx.session.execute(
        select(PartnerKey).where(PartnerKey.partner_id == partner_id)
        .order_by((PartnerKey.status == "active").desc(), PartnerKey.created_at.desc(), PartnerKey.key_id)
        .offset(offset).limit(limit)).scalars().all()
    total = tx.session.execute(select(func.count()).select_from(PartnerKey)
                               .where(PartnerKey.partner_id == partner_id)).scalar_one()
    return ([{"key_id": r.key_id, "status": r.status, "public_key": r.public_key,
              "created_at": r.created_at.isoformat(),
              "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None} for r in rows], int(total))


def key_partner(tx: Tx, key_id: str) -> str | None:
    """The partner a key belongs to (None: no such key)."""
    return tx.session.execute(select(PartnerKey.partner_id).where(PartnerKey.key_id == key_id)).scalar_one_or_none()

