"""Settlement as finance reads it: runs per cycle with their payment status, each party's net
position, the bilateral sums, a party's statements across cycles, and the run's files by name.

Every list is a page in SQL, but for the bilateral sums: those are read from the run's own
bilateral.csv (one record per payer, payee and line kind — what was settled and signed), since
summing a large cycle's obligation lines again costs seconds for a page.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import case, func, select

from shared.db.database import Tx
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.models import Partner, PendingAction, Settlement, SettlementPayment, SettlementRun
from shared.reports.spreadsheet import spreadsheet_row
from shared.settlement import finance
from shared.settlement.files import NETWORK, statement_name
from shared.settlement.reconcile import Break, PartnerLogError, UnverifiedStatement, match_partner_log, \
    verified_statement
from shared.settlement.runs import UnknownCycle, of_the_network, run_directory

SHARED_FILES = ("network-summary.csv", "bilateral.csv", "manifest.json", "manifest.json.sig")
BREAK_COLUMNS = ("reference", "break", "ours", "theirs", "reason")


class UnknownSettlementFile(NotFound):
    code, title = "settlement_file_not_found", "No such settlement file"


class InvalidPartnerLog(ValidationFailed):
    code, title = "invalid_partner_log", "The partner's log cannot be read"


class StatementNotVerified(Conflict):
    code, title = "statement_not_verified", "The statement is not the one the network signed"


def names_of(tx: Tx, parties) -> dict[str, str]:
    """Display names of these parties (partners by name, the network as itself)."""
    wanted = sorted({p for p in parties if p and p != NETWORK})
    names = dict(tx.session.execute(select(Partner.id, Partner.name).where(Partner.id.in_(wanted))).all()) \
        if wanted else {}
    return names | {NETWORK: NETWORK}


def runs_page(tx: Tx, today: date, *, offset: int = 0, limit: int = 50) -> tuple[list[dict], int]:
    """Settlement runs, newest cycle first, each with how many parties are due, overdue, paid or have nothing due,
    and the total payable by bank (a prepaid float's part of a net is not).

    From the network's first cycle on (``runs.of_the_network``), as ``clearing list``: a run of an
    earlier day (a typo run by hand before such runs were refused) is no cycle of the network."""
    since = of_the_network(SettlementRun.cycle_date)
    runs = tx.session.execute(select(SettlementRun).where(since).order_by(SettlementRun.cycle_date.desc())
                              .offset(offset).limit(limit)).scalars().all()
    total = tx.session.scalar(select(func.count()).select_from(SettlementRun).where(since)) or 0
    counts: dict[date, dict[str, int]] = {}
    if runs:
        overdue = case((Settlement.payment_date < today, 1), else_=0)
        bank = Settlement.by_bank_minor  # what moves by bank (not from a float)
        for cycle, status, n, late, pays in tx.session.execute(
                select(Settlement.cycle_date, Settlement.status, func.count(),
                       func.sum(overdue), func.sum(case((bank < 0, -bank), else_=0)))
                .where(Settlement.cycle_date.in_([r.cycle_date for r in runs]))
                .group_by(Settlement.cycle_date, Settlement.status)):
            row = counts.setdefault(cycle, {"due": 0, "overdue": 0, "paid": 0, "nothing_due": 0, "volume_minor": 0})
            row["paid" if status in ("paid", "received") else status] += int(n)
            if status == "due":
                row["overdue"] += int(late or 0)
            row["volume_minor"] += int(pays or 0)
    rows = []
    for run in runs:
        figures = counts.get(run.cycle_date, {"due": 0, "overdue": 0, "paid": 0, "nothing_due": 0,
                                              "volume_minor": 0})
        status = "overdue" if figures["overdue"] else "due" if figures["due"] else "settled"
        rows.append({"cycle_date": run.cycle_date, "run_id": run.run_id, "settled_at": run.settled_at,
                     "manifest_sha256": run.manifest_sha256, "status": status} | figures)
    return rows, int(total)


def run_of(tx: Tx, cycle: date) -> SettlementRun:
    """The cycle's run; UnknownCycle for a cycle not settled, or one before the network's first cycle
    (``runs.of_the_network``: the runs list does not show it, nor do its pages, files and reconciliation)."""
    run = tx.session.execute(select(SettlementRun).where(
        SettlementRun.cycle_date == cycle, of_the_network(SettlementRun.cycle_date))).scalar_one_or_none()
    if run is None:
        raise UnknownCycle(f"cycle {cycle.isoformat()} has not been settled")
    return run


def positions_page(tx: Tx, cycle: date, *, offset: int = 0, limit: int = 50,
                   party: str | None = None) -> tuple[list[dict], int]:
    """Each party's net position for the cycle (receives +, pays −), the part of it settled from a
    prepaid float and what moves by bank (net + from float), with its payment status."""
    where = [Settlement.cycle_date == cycle] + ([Settlement.party == party] if party else [])
    rows = tx.session.execute(select(Settlement).where(*where).order_by(Settlement.party)
                              .offset(offset).limit(limit)).scalars().all()
    total = tx.session.scalar(select(func.count()).select_from(Settlement).where(*where)) or 0
    names = names_of(tx, [r.party for r in rows])
    waiting = pending_payments(tx, cycle, [r.party for r in rows])
    paid = finance.paid_sums(tx, Settlement.cycle_date == cycle, Settlement.party.in_([r.party for r in rows])) \
        if rows else {}
    return [{"party": r.party, "name": names.get(r.party, r.party), "net_minor": r.net_minor,
             "from_float_minor": r.from_float_minor, "by_bank_minor": r.by_bank_minor,
             "payment_date": r.payment_date, "status": r.status, "bank_reference": r.bank_reference,
             "recorded_at": r.recorded_at, "statement": None if r.party == NETWORK else statement_name(r.party),
             "pending_approval": waiting.get(r.party)}
            | finance.amounts(r.status, r.by_bank_minor, paid.get((cycle, r.party), 0)) for r in rows], int(total)


def position_offset(tx: Tx, cycle: date, party: str, limit: int) -> int:
    """The offset of the page of ``positions_page`` (pages of ``limit``) that shows ``party``'s row."""
    before = tx.session.scalar(select(func.count()).select_from(Settlement).where(
        Settlement.cycle_date == cycle, Settlement.party < party)) or 0
    return int(before) // limit * limit


def payments_of(tx: Tx, cycle: date, parties: list[str]) -> list[dict]:
    """The bank transfers recorded against these parties' settlements of the cycle, by party and in the
    order they were recorded: reference, amount (minor units, its sign aside) and when."""
    if not parties:
        return []
    rows = tx.session.execute(select(SettlementPayment).where(
        SettlementPayment.cycle_date == cycle, SettlementPayment.party.in_(parties))
        .order_by(SettlementPayment.party, SettlementPayment.id)).scalars().all()
    names = names_of(tx, [r.party for r in rows])
    return [{"party": r.party, "name": names.get(r.party, r.party), "amount_minor": r.amount_minor,
             "bank_reference": r.bank_reference, "recorded_at": r.recorded_at} for r in rows]


def payment_target(cycle: date, party: str) -> str:
    """The target a settlement_paid request names (the approvals and audit pages show it)."""
    return f"{cycle.isoformat()}/{party}"


def pending_payments(tx: Tx, cycle: date, parties: list[str]) -> dict[str, int]:
    """party -> id of a settlement_paid request waiting for a second operator."""
    if not parties:
        return {}
    targets = {payment_target(cycle, p): p for p in parties}
    rows = tx.session.execute(select(PendingAction.target, PendingAction.id).where(
        PendingAction.action == "settlement_paid", PendingAction.status == "pending",
        PendingAction.target.in_(list(targets)))).all()
    return {targets[target]: pending_id for target, pending_id in rows}


def bilateral_page(tx: Tx, cycle: date, *, offset: int = 0, limit: int = 50) -> tuple[list[dict], int]:
    """The cycle's bilateral sums per (payer, payee, kind) — points, exact amount, amount rounded once —
    as the run's bilateral.csv holds them (what was settled and signed; one row per pair and kind,
    read as a stream)."""
    path = settlement_file(tx, cycle, "bilateral.csv")
    rows: list[dict] = []
    total = 0
    with open(path, newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            if record["record_type"] != "D":
                continue
            if offset <= total < offset + limit:
                rows.append(record)
            total += 1
    names = names_of(tx, [r["payer"] for r in rows] + [r["payee"] for r in rows])
    return [{"payer": r["payer"], "payer_name": names.get(r["payer"], r["payer"]), "payee": r["payee"],
             "payee_name": names.get(r["payee"], r["payee"]), "kind": r["line_kind"], "points": int(r["points"]),
             "amount": r["amount"], "amount_minor": int(r["amount_minor"])} for r in rows], total


def party_statements_page(tx: Tx, party: str, *, offset: int = 0, limit: int = 50) -> tuple[list[dict], int]:
    """One party's settlements, newest cycle first, each with its statement file's name and what is paid
    and outstanding of it: from the network's first cycle on (``runs.of_the_network``), as ``clearing
    list`` and the runs list."""
    where = [Settlement.party == party, of_the_network(Settlement.cycle_date)]
    rows = tx.session.execute(select(Settlement).where(*where).order_by(Settlement.cycle_date.desc())
                              .offset(offset).limit(limit)).scalars().all()
    total = tx.session.scalar(select(func.count()).select_from(Settlement).where(*where)) or 0
    paid = finance.paid_sums(tx, Settlement.party == party, Settlement.cycle_date.in_([r.cycle_date for r in rows])) \
        if rows else {}
    return [{"cycle_date": r.cycle_date, "net_minor": r.net_minor, "from_float_minor": r.from_float_minor,
             "by_bank_minor": r.by_bank_minor, "payment_date": r.payment_date,
             "status": r.status, "bank_reference": r.bank_reference, "statement": statement_name(party)}
            | finance.amounts(r.status, r.by_bank_minor, paid.get((r.cycle_date, party), 0)) for r in rows], int(total)


def party_of_file(name: str) -> str | None:
    """The party whose statement this file name is, or None for the network's shared files."""
    if name in SHARED_FILES:
        return None
    if name.startswith("statement-") and name.endswith(".csv") and len(name) > len("statement-.csv"):
        return name[len("statement-"):-len(".csv")]
    raise UnknownSettlementFile(f"no settlement file {name!r}")


def settlement_file(tx: Tx, cycle: date, name: str) -> Path:
    """The path of one of the cycle's files, only if ``name`` is one the run wrote.

    The name is never joined to a path as given: a statement's name is rebuilt from a party of
    the cycle's settlements, the others come from a fixed list, and the result must lie directly
    in the run's directory.
    """
    run = run_of(tx, cycle)
    party = party_of_file(name)
    if party is not None:
        known = tx.session.scalar(select(Settlement.party).where(Settlement.cycle_date == cycle,
                                                                 Settlement.party == party))
        if known is None or known == NETWORK:
            raise UnknownSettlementFile(f"no settlement file {name!r} in cycle {cycle.isoformat()}")
        name = statement_name(known)
    else:
        name = SHARED_FILES[SHARED_FILES.index(name)]
    directory = run_directory(tx, run.cycle_date).resolve()  # under the data directory in force now
    path = (directory / name).resolve()
    if path.parent != directory or not path.is_file():
        raise UnknownSettlementFile(f"no settlement file {name!r} in cycle {cycle.isoformat()}")
    return path


def reconcile_partner_log(tx: Tx, cycle: date, partner_id: str, log: str,
                          public_keys: dict[str, Ed25519PublicKey]) -> list[Break]:
    """A partner's own log (CSV reference,kind,points,amount,time) against its statement of the cycle —
    the one in the run's directory, matched only when the manifest is the one the run wrote, its signature
    verifies and the statement's SHA-256 is the one it lists (StatementNotVerified otherwise)."""
    settlement_file(tx, cycle, statement_name(partner_id))  # a party of the cycle, its file in the run's directory
    run = run_of(tx, cycle)
    try:
        statement = verified_statement(run_directory(tx, cycle), partner_id, public_keys,
                                       manifest_sha256=run.manifest_sha256)
        return match_partner_log(tx, statement, partner_id, log)
    except UnverifiedStatement as exc:
        raise StatementNotVerified(str(exc)) from None
    except PartnerLogError as exc:  # "partner log line N: …"
        raise InvalidPartnerLog(str(exc)) from None
    except ValueError as exc:  # the statement itself cannot be read
        raise ValidationFailed(str(exc)) from None


def breaks_csv(breaks: list[Break]) -> str:
    """The breaks report as CSV (the columns `pointsnet reconcile --breaks-csv` writes)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(BREAK_COLUMNS)
    # what the partner's log wrote goes into a spreadsheet: formula-like text gets a leading '
    writer.writerows(spreadsheet_row([b.reference, b.kind, b.ours, b.theirs, b.reason]) for b in breaks)
    return out.getvalue()
