"""Partners and their versioned contract terms (changing only at cycle boundaries)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import bindparam, func, insert, select, true

from shared.db.database import Tx
from shared.db.types import new_id
from shared.errors import ContractNotAtBoundary, UnknownPartner, ValidationFailed
from shared.ledger.cycles import cycle_date_for, cycle_end
from shared.ledger.rules import Terms
from shared.models import Account, Contract, Cycle, Partner
from shared.money import MAX_MICRO, MICRO, MoneyError, rate_to_ppm, to_decimal, to_micro
from shared.partners.names import MAX_NAME, name_key
from shared.rules.document import MAX_RATE

contracts = Contract.__table__
partners = Partner.__table__
# Built once (the posting path runs them on every request): only executed afterwards.
_PARTNER_STATUS = select(partners.c.status).where(partners.c.id == bindparam("partner_id"))
_LOCK_PARTNER = select(partners.c.id).where(partners.c.id == bindparam("partner_id")).with_for_update(key_share=True)
_TERMS_IN_FORCE = (select(contracts).where(contracts.c.partner_id == bindparam("partner_id"),
                                           contracts.c.effective_from <= bindparam("cycle_date"))
                   .order_by(contracts.c.effective_from.desc()).limit(1))
# The partner's status and its terms in force on a cycle date in one round trip (the posting path):
# the same two reads, the terms left NULL where no version is in force yet.
_TERMS_ROW = _TERMS_IN_FORCE.subquery("terms")
_STATUS_AND_TERMS = (select(partners.c.status.label("partner_status"), _TERMS_ROW)
                     .select_from(partners.outerjoin(_TERMS_ROW, true()))
                     .where(partners.c.id == bindparam("partner_id")))

# The most a money term (minor units) may be: its millionths fit the contracts table's 64-bit columns
# (9223372036854.775807). More is refused here, naming the term, not overflowed in the database.
MAX_TERM = Decimal(MAX_MICRO) / MICRO
# The most the base rate (points per major unit) may be: the earn rules' cap on any rate, so a contract
# cannot set what a rules document may not (one major unit earns at most the points one event moves).
MAX_BASE_RATE = MAX_RATE
# A version takes effect at most this many years after the network's today: further is a slip of the
# keyboard (2206 for 2026), and a version on the calendar's last day would leave no day after it.
HORIZON_YEARS = 10
# A version takes effect at a cycle that begins at least this long after the unit adding it (see
# ``add_contract_version``): far longer than any unit of work runs, so it is committed by then.
CONTRACT_NOTICE = timedelta(minutes=10)


@dataclass(frozen=True)
class ContractTerms:
    """Terms as people write them: money in minor units (decimals allowed), rates as decimals."""

    billing: str = "postpaid"
    point_value: Decimal | str | int = Decimal(1)
    issuance_fee: Decimal | str | int = Decimal(0)
    redemption_fee_rate: Decimal | str | int = Decimal(0)
    breakage_share: Decimal | str | int = Decimal(0)
    base_rate: Decimal | str | int = Decimal(1)  # points per major currency unit

    def to_columns(self) -> dict:
        if self.billing not in ("postpaid", "prepaid"):
            raise ValidationFailed(f"billing must be postpaid or prepaid, not {self.billing!r}")
        try:
            return {
                "billing": self.billing,
                "point_value_micro": to_micro(_in_range(self.point_value, "point_value", "minor units"),
                                              what="point_value"),
                "issuance_fee_micro": to_micro(_in_range(self.issuance_fee, "issuance_fee", "minor units"),
                                               what="issuance_fee"),
                "redemption_fee_ppm": rate_to_ppm(self.redemption_fee_rate, what="redemption_fee_rate"),
                "breakage_share_ppm": rate_to_ppm(self.breakage_share, what="breakage_share"),
                "base_rate_micro": rate_to_ppm(_in_range(self.base_rate, "base_rate", "points per major unit",
                                                         maximum=MAX_BASE_RATE,
                                                         why=" (the most points one event moves)"),
                                               what="base_rate", maximum=None),
            }
        except MoneyError as exc:
            raise ValidationFailed(str(exc)) from exc


def _in_range(value, what: str, unit: str, *, maximum: Decimal = MAX_TERM, why: str = ""):
    """``value`` if it lies between 0 and ``maximum``; refused here, naming the term, rather than by the
    table's check constraint or the database's 64-bit column (or Decimal's exponent range, when scaled)."""
    number = to_decimal(value, what=what)
    if number < 0:
        raise ValidationFailed(f"{what}: {value} must be 0 or more")
    if number > maximum:
        raise ValidationFailed(f"{what}: {value} must be at most {maximum} {unit}{why}")
    return value


def partner_accounts(partner_id: str) -> list[dict]:
    return [
        {"id": f"partner:{partner_id}:issued", "kind": "partner_issued"},
        {"id": f"partner:{partner_id}:redeemed", "kind": "partner_redeemed"},
    ]


def create_partner(tx: Tx, name: str, terms: ContractTerms | None = None, *, partner_id: str | None = None) -> dict:
    """Register a partner with contract version 1, in force from the current cycle."""
    name = name.strip()
    if not name:
        raise ValidationFailed("partner name must not be empty")
    if len(name) > MAX_NAME:
        raise ValidationFailed(f"partner name is at most {MAX_NAME} characters")
    key = name_key(name)
    # One name per partner, compared without case, end spacing or Unicode form (shared/partners/names.py);
    # the unique name_key refuses a racing twin, and the unit's retry then finds it here.
    existing = tx.session.execute(select(Partner.name).where(Partner.name_key == key)).scalar_one_or_none()
    if existing is not None:
        same = "" if existing == name else " (names are compared ignoring case, end spaces and Unicode form)"
        raise ValidationFailed(f"a partner named {existing!r} already exists{same}")
    columns = (terms or ContractTerms()).to_columns()
    partner_id = partner_id or new_id("ptn")
    tx.session.execute(insert(Partner.__table__).values(id=partner_id, name=name, name_key=key, status="active",
                                                        created_at=tx.now))
    tx.session.execute(insert(Account.__table__), partner_accounts(partner_id))
    contract_id = new_id("ctr")
    tx.session.execute(insert(contracts).values(
        id=contract_id, partner_id=partner_id, version=1,
        effective_from=cycle_date_for(tx.now, tx.settings), created_at=tx.now, **columns,
    ))
    return {"partner_id": partner_id, "name": name, "contract_id": contract_id, "contract_version": 1}


def refuse_beyond_horizon(effective_from: date | None, today: date, what: str = "a contract version") -> None:
    """A version's date at most HORIZON_YEARS after the network's ``today`` (its current cycle date);
    later is refused as bad input, naming the latest date allowed."""
    try:
        horizon = today.replace(year=today.year + HORIZON_YEARS)
    except ValueError:  # 29 February, in a year that has none
        horizon = today.replace(year=today.year + HORIZON_YEARS, day=28)
    if effective_from is not None and effective_from > horizon:
        raise ValidationFailed(f"effective_from {effective_from} is too far ahead: {what} takes effect "
                               f"at most {HORIZON_YEARS} years ahead ({horizon} at the latest)")


def first_effective_date(tx: Tx) -> date:
    """The first cycle a contract version added now may take effect from: the one after the cycle that
    will be open CONTRACT_NOTICE from now (usually tomorrow; the day after within the notice of a
    cut-off), and after every cycle the ledger has begun (``begun_cycle``). The dashboard's form
    suggests it."""
    first = cycle_date_for(tx.now + CONTRACT_NOTICE, tx.settings) + timedelta(days=1)
    begun = begun_cycle(tx)
    return first if begun is None or begun < first else begun + timedelta(days=1)


def begun_cycle(tx: Tx) -> date | None:
    """The latest cycle an entry has entered, by whichever host's clock: a host whose clock is behind the
    others' (two hours slow, say) must not take a cycle they have posted into for one not begun yet."""
    return tx.session.scalar(select(func.max(Cycle.cycle_date)))


def contract_version_date(tx: Tx, partner_id: str, effective_from: date | None = None) -> date:
    """The date a new version of the partner's contract would take effect from, now: ``effective_from``
    or by default the first cycle it may (``first_effective_date``). Refuses a date that cannot be one
    (``add_contract_version``'s rules): after today's cycle and after every cycle the ledger has begun
    (``begun_cycle``: judged by the database, not by this host's clock alone), at least CONTRACT_NOTICE
    ahead, after every version already added, at most HORIZON_YEARS ahead. The dashboard checks a request
    with it when it is filed; time passes before approval, which checks again."""
    require_partner(tx, partner_id)
    current = cycle_date_for(tx.now, tx.settings)
    refuse_beyond_horizon(effective_from, current)
    effective_from = effective_from or first_effective_date(tx)
    if effective_from <= current:
        raise ContractNotAtBoundary(
            f"contract changes take effect from a future cycle; {effective_from} is not after {current}"
        )
    begun = begun_cycle(tx)
    if begun is not None and effective_from <= begun:
        raise ContractNotAtBoundary(
            f"contract changes take effect from a cycle no entry has entered yet; cycle {begun} has begun (its "
            f"first entry was posted by a host whose clock is ahead of this one's): choose "
            f"{begun + timedelta(days=1)} or later")
    settled = cycle_date_for(tx.now + CONTRACT_NOTICE, tx.settings)  # the cycle open at the end of the notice
    if effective_from <= settled:
        minutes = int(CONTRACT_NOTICE.total_seconds() // 60)
        raise ContractNotAtBoundary(
            f"contract changes take effect from a cycle that begins at least {minutes} minutes ahead; "
            f"{effective_from} begins at {cycle_end(effective_from - timedelta(days=1), tx.settings).isoformat()}, "
            f"too soon: choose {settled + timedelta(days=1)} or later"
        )
    latest = tx.session.scalar(select(func.max(contracts.c.effective_from)).where(contracts.c.partner_id == partner_id))
    if latest is not None and effective_from <= latest:
        raise ContractNotAtBoundary(f"a version already takes effect on or after {effective_from}")
    return effective_from


def add_contract_version(tx: Tx, partner_id: str, terms: ContractTerms, effective_from: date | None = None) -> dict:
    """A new version takes effect at a future cycle boundary at least CONTRACT_NOTICE ahead (default:
    the first such cycle, usually the next), at most HORIZON_YEARS ahead (``contract_version_date``).

    Postings read the terms in force without a lock (``partner_with_terms``): a version whose unit
    committed after its cycle had begun would be missed by that cycle's first postings and read by
    the later ones (two contracts in one cycle). So its cycle must begin at least CONTRACT_NOTICE
    after this unit's time, which no unit of work outlasts: it is in force only once committed."""
    effective_from = contract_version_date(tx, partner_id, effective_from)
    latest = tx.session.scalar(select(func.max(contracts.c.version)).where(contracts.c.partner_id == partner_id))
    contract_id = new_id("ctr")
    version = (latest or 0) + 1
    tx.session.execute(insert(contracts).values(
        id=contract_id, partner_id=partner_id, version=version, effective_from=effective_from,
        created_at=tx.now, **terms.to_columns(),
    ))
    return {"partner_id": partner_id, "contract_id": contract_id, "contract_version": version,
            "effective_from": effective_from.isoformat()}


def lock_partner(tx: Tx, partner_id: str) -> None:
    """On PostgreSQL, the partner's row FOR NO KEY UPDATE until commit: changes to the partner itself
    (its status, a termination, its keys) go one at a time, while postings, whose foreign keys take
    only KEY SHARE, go on."""
    if tx.is_postgres:
        tx.session.execute(_LOCK_PARTNER, {"partner_id": partner_id})


def require_partner(tx: Tx, partner_id: str) -> str:
    status = tx.session.execute(_PARTNER_STATUS, {"partner_id": partner_id}).scalar_one_or_none()
    if status is None:
        raise UnknownPartner(f"no partner {partner_id}")
    return status


def partner_with_terms(tx: Tx, partner_id: str, cycle_date: date) -> tuple[str, Terms | None]:
    """``require_partner`` and ``terms_in_force`` in one statement: (the partner's status, its terms in
    force on ``cycle_date``, or None where none is; ``terms_in_force`` then refuses as it does).
    A posting read the terms without a lock before too, a few statements later in the same unit;
    versions are only ever added, each in force from a cycle after the one it is added in."""
    row = tx.session.execute(_STATUS_AND_TERMS, {"partner_id": partner_id, "cycle_date": cycle_date}).first()
    if row is None:
        raise UnknownPartner(f"no partner {partner_id}")
    return row.partner_status, (_terms(row) if row.id is not None else None)


def _terms(row) -> Terms:
    return Terms(
        contract_id=row.id, partner_id=row.partner_id, billing=row.billing,
        point_value_micro=row.point_value_micro, issuance_fee_micro=row.issuance_fee_micro,
        redemption_fee_ppm=row.redemption_fee_ppm, breakage_share_ppm=row.breakage_share_ppm,
        base_rate_micro=row.base_rate_micro,
    )


def terms_in_force(tx: Tx, partner_id: str, cycle_date: date) -> Terms:
    row = tx.session.execute(_TERMS_IN_FORCE, {"partner_id": partner_id, "cycle_date": cycle_date}).first()
    if row is None:
        raise UnknownPartner(f"partner {partner_id} has no contract in force on {cycle_date}")
    return _terms(row)


def terms_by_id(tx: Tx, contract_ids: set[str]) -> dict[str, Terms]:
    if not contract_ids:
        return {}
    rows = tx.session.execute(select(contracts).where(contracts.c.id.in_(sorted(contract_ids))))
    return {row.id: _terms(row) for row in rows}


