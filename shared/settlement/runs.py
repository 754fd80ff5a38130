"""Settling a cycle: close it, net its obligation lines, write signed files, record the settlement.

One unit of work per cycle. The files are deterministic, written to a temporary
directory and renamed into place, and the settlement row (keyed on the cycle)
commits after them: a crash at any point and a re-run give the same files byte
for byte, and a cycle is never settled twice.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
from datetime import date, timedelta
from pathlib import Path
from typing import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import String, func, insert, literal, select, text, union_all
from sqlalchemy.orm import aliased

from shared.alerts import raise_alert
from shared.db.database import Tx
from shared.db.types import new_id
from shared.errors import Conflict, NotFound
from shared.ledger.cycles import close_cycle, cycle_date_for, cycle_end
from shared.models import Contract, Cycle, CyclePosition, Entry, ObligationLine, Settlement, SettlementRun
from shared.partners.limits import FloatDraw, credit_settled_by_bank, float_draws
from shared.reports.rollup import roll_up_settling
from shared.settlement.calendar import payment_date
from shared.settlement.streaming import WrittenCycle, write_cycle
from shared.settlement.files import FORMAT_VERSION, NETWORK, CycleFiles, LineRecord, build
from shared.signing import network_key_id
from shared.staging import staged_directory, write_synced
from shared.transparency.checkpoints import checkpoint_at_cutoff, covering
from shared.webhooks.outbox import record_settlement_ready


def failpoint(name: str) -> None:
    """Crash drills: POINTSNET_FAILPOINT=<name> kills the process here (SIGKILL), as a power cut would."""
    if os.environ.get("POINTSNET_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


class CycleNotEnded(Conflict):
    code, title = "cycle_not_ended", "The cycle has not ended yet"


class UnknownCycle(NotFound):
    code, title = "unknown_cycle", "No such cycle"


class SettlementDirectoryMissing(Conflict):
    code, title = "settlement_directory_missing", "The settled cycle's directory is missing"


class SettlementDirectoryAhead(Conflict):
    code, title = "settlement_directory_ahead", "The cycle's directory holds files the ledger did not settle"


def load_lines(tx: Tx, cycle: date) -> list[LineRecord]:
    line, entry = ObligationLine, Entry
    original_line, original_entry = aliased(ObligationLine), aliased(Entry)
    rows = tx.session.execute(
        select(line.id, line.entry_id, entry.kind, entry.partner_id, entry.reference, line.payer, line.payee,
               line.kind, line.points, line.amount_micro, Contract.version, original_entry.id,
               original_line.cycle_date)
        .join(entry, entry.id == line.entry_id)
        .outerjoin(Contract, Contract.id == line.contract_id)
        .outerjoin(original_line, original_line.id == line.original_line_id)
        .outerjoin(original_entry, original_entry.id == original_line.entry_id)
        .where(line.cycle_date == cycle)
    ).all()
    return [LineRecord(*row) for row in rows]


def partner_statements(tx: Tx, party: str, before: date | None, limit: int) -> list[Settlement]:
    """Up to ``limit`` of the party's settlements, newest first, of cycles before ``before`` (None: all)
    from the network's first cycle on (``of_the_network``): ``GET /v1/statements``, one range of
    ix_settlements_party_cycle."""
    query = select(Settlement).where(Settlement.party == party, of_the_network(Settlement.cycle_date))
    if before is not None:
        query = query.where(Settlement.cycle_date < before)
    return list(tx.session.execute(query.order_by(Settlement.cycle_date.desc()).limit(limit)).scalars())


def ledger_position(tx: Tx, cycle: date, *, keep: bool = False, recount: bool = False) -> dict:
    """The manifest's ``ledger_position``: the entries of every cycle up to ``cycle``, of ``cycle``
    alone, and the largest entry id among them.

    A settled cycle's figures are kept (``cycle_positions``) when every cycle of the network up to it
    (``of_the_network``) is closed then (entries join only the current cycle, so they cannot change),
    and a later cycle's count starts from the newest kept one before it and reads only the entries of
    the cycles since (counting every entry through the cycle grew with the ledger's whole history,
    once a day). ``keep``: settlement, in its unit of work, keeping this cycle's. ``recount``:
    reconciliation, which checks a manifest against the entries themselves, counting every entry
    through the cycle and trusting no kept figure.
    """
    if not recount:
        kept = tx.session.execute(select(CyclePosition).where(CyclePosition.cycle_date == cycle)).scalar_one_or_none()
        if kept is not None:
            return _position(kept.entries_through_cycle, kept.entries_in_cycle, kept.last_transaction_id)
    base = None if recount else tx.session.execute(
        select(CyclePosition).where(CyclePosition.cycle_date < cycle)
        .order_by(CyclePosition.cycle_date.desc()).limit(1)).scalar_one_or_none()
    since = [Entry.cycle_date <= cycle] + ([Entry.cycle_date > base.cycle_date] if base else [])
    entries, last = tx.session.execute(select(func.count(), func.max(Entry.id)).where(*since)).one()
    if base is not None and base.last_transaction_id is not None:
        last = base.last_transaction_id if last is None else _larger(tx, base.last_transaction_id, last)
    in_cycle = tx.session.execute(select(func.count()).where(Entry.cycle_date == cycle)).scalar_one()
    position = _position(entries + (base.entries_through_cycle if base else 0), in_cycle, last)
    # An open cycle before the network's first one (``of_the_network``: a row an older merge, erasure or
    # buy-out left, which a termination may name) can gain no entry, entries joining only the cycle of
    # the moment they are written: it holds nothing back. A real open earlier cycle still does.
    if keep and not tx.session.execute(select(Cycle.cycle_date).where(
            Cycle.cycle_date <= cycle, Cycle.status != "closed", of_the_network(Cycle.cycle_date)).limit(1)).first():
        tx.session.execute(insert(CyclePosition.__table__).values(
            cycle_date=cycle, entries_in_cycle=in_cycle, entries_through_cycle=position["entries_through_cycle"],
            last_transaction_id=last))
    return position


def _larger(tx: Tx, first: str, second: str) -> str:
    """The larger id as the database orders them (its collation), as ``max(id)`` over the entries did."""
    both = union_all(select(literal(first, String).label("id")), select(literal(second, String).label("id"))).subquery()
    return tx.session.execute(select(func.max(both.c.id))).scalar_one()


def _position(through: int, in_cycle: int, last: str | None) -> dict:
    return {"entries_through_cycle": int(through), "entries_in_cycle": int(in_cycle), "last_transaction_id": last}


def cutoff_checkpoint(tx: Tx, cycle: date, key: Ed25519PrivateKey | None = None) -> dict | None:
    """The manifest's ``checkpoint``: the first signed checkpoint holding every entry up to the cycle.

    Settlement (with the key; the cycle is closed, so no entry can join it) signs one if none covers
    it yet; a recomputation (no key) finds the same stored checkpoint, so the manifest is the same.
    """
    row = checkpoint_at_cutoff(tx, cycle, key) if key is not None else covering(tx, cycle)
    if row is None:
        return None
    return {"tree_size": row.tree_size, "root_hash": base64.b64encode(row.root_hash).decode(), "note": row.note}


def cutoff_of(cycle: date, settings) -> str:
    """The cycle's cut-off as its files write it (RFC 3339, UTC with ``Z``)."""
    return cycle_end(cycle, settings).isoformat().replace("+00:00", "Z")


def compute(tx: Tx, cycle: date, pay_on: date) -> CycleFiles:
    """The reference implementation's files for a settled cycle (read-only)."""
    return build(cycle, load_lines(tx, cycle), currency=tx.settings.currency,
                 cutoff=cutoff_of(cycle, tx.settings), payment_date=pay_on,
                 ledger_position=ledger_position(tx, cycle, recount=True), checkpoint=cutoff_checkpoint(tx, cycle))


def sign_manifest(manifest: bytes, key: Ed25519PrivateKey) -> bytes:
    signature = base64.b64encode(key.sign(manifest)).decode()
    return (json.dumps({"alg": "ed25519", "key_id": network_key_id(key), "signature": signature},
                       indent=2, sort_keys=True) + "\n").encode()


def settlement_dir(data_dir: Path, cycle: date) -> Path:
    """A cycle's settlement directory: ``settlements/<cycle date>`` of the data directory.

    Readers take a settled cycle's directory from here, under the data directory in force now, not
    from ``settlement_runs.directory`` (the path the run wrote to, kept as a record only): a data
    directory moved or restored elsewhere still serves its files."""
    return data_dir / "settlements" / cycle.isoformat()


def run_directory(tx: Tx, cycle: date) -> Path:
    """A settled cycle's directory under the current data directory (``settlement_dir``)."""
    return settlement_dir(tx.settings.data_dir, cycle)


def missing(path: Path) -> bool:
    """True when no directory is there (a name the file system cannot even look up counts as missing)."""
    try:
        return not path.is_dir()
    except OSError:
        return True


def write_cycle_files(tx: Tx, cycle: date, pay_on: date, target: Path, key: Ed25519PrivateKey,
                      meanwhile: Callable[[], None] | None = None) -> WrittenCycle:
    """Stream the cycle's files into a temporary sibling, sign, then rename into place.

    A crash leaves at most a stray staging directory; a re-run replaces an identical earlier attempt.
    """
    with staged_directory(target) as staging:
        written = write_cycle(tx, cycle, staging, currency=tx.settings.currency,
                              cutoff=cutoff_of(cycle, tx.settings),
                              payment_date=pay_on, ledger_position=ledger_position(tx, cycle, keep=True),
                              checkpoint=cutoff_checkpoint(tx, cycle, key), meanwhile=meanwhile)
        refuse_a_directory_ahead(tx, cycle, target, written.manifest)
        write_synced(staging / "manifest.json", written.manifest)
        write_synced(staging / "manifest.json.sig", sign_manifest(written.manifest, key))
    return written


def refuse_a_directory_ahead(tx: Tx, cycle: date, target: Path, manifest: bytes) -> None:
    """Settling a cycle the database has not settled, where its directory is already there: only an earlier
    attempt of this very settlement (files renamed into place, then its unit did not commit) may be
    replaced, and it wrote the same manifest byte for byte. Any other directory was settled by a ledger
    this database is behind, a database restored from an older backup: partners may hold its signed
    files, so nothing is replaced and nothing is settled until an operator has compared them
    (docs/operations.md, "Restoring")."""
    if missing(target):
        return
    try:
        there = (target / "manifest.json").read_bytes()
    except OSError:
        there = None
    if there == manifest:
        return
    raise_alert(tx, "settlement_directory_ahead", cycle_date=cycle.isoformat(), directory=str(target))
    raise SettlementDirectoryAhead(
        f"cycle {cycle} is not settled in the database, but {target} holds "
        + ("a settlement the ledger does not give again" if there is not None else "files without a manifest")
        + ": the database is behind the settlement files (restored from an older backup?). Nothing was "
          "settled or replaced; check the directory with `pointsnet reconcile` and see docs/operations.md, "
          "\"Restoring\", before moving it aside")


def _settled_or_ready(tx: Tx, cycle: date, ignore_grace: bool) -> SettlementRun | None:
    """Take the cycle's settlement lock; the run if the cycle is settled, else check it may be settled."""
    if tx.is_postgres:  # one settler per cycle, however many workers
        tx.session.execute(text("SELECT pg_advisory_xact_lock(7242003, :d)"), {"d": cycle.toordinal()})
    done = tx.session.execute(select(SettlementRun).where(SettlementRun.cycle_date == cycle)).scalar_one_or_none()
    if done is not None:
        return done
    end = cycle_end(cycle, tx.settings)
    ready = end if ignore_grace else end + timedelta(minutes=tx.settings.settlement_grace_minutes)
    if cycle >= cycle_date_for(tx.now, tx.settings) or tx.now < ready:
        raise CycleNotEnded(f"cycle {cycle} ends at {end.isoformat()}; it cannot be settled before "
                            f"{ready.isoformat()}")
    first = first_cycle(tx)
    if first is None:
        raise UnknownCycle(f"cycle {cycle} cannot be settled: the network has no cycle yet (its first cycle "
                           f"is the business day of its first ledger entry)")
    if cycle < first:
        raise UnknownCycle(f"cycle {cycle} is before the network's first cycle, {first} (the business day of "
                           f"its first ledger entry): there is nothing to settle")
    return None


def prepare_cycle(tx: Tx, cycle: date, key: Ed25519PrivateKey, *, ignore_grace: bool = True) -> None:
    """The first of a settlement's two units of work: close the cycle and commit its checkpoint at
    cut-off. Committed before any file is written, the checkpoint is the same for every later attempt
    (a run that crashes after writing its files rolls back only its own unit), so a re-run writes the
    same manifest byte for byte however much the ledger grew in between."""
    if _settled_or_ready(tx, cycle, ignore_grace) is not None:
        return
    close_cycle(tx, cycle)
    cutoff_checkpoint(tx, cycle, key)
    fixed_payment_date(tx, cycle)


def fixed_payment_date(tx: Tx, cycle: date) -> date:
    """The cycle's payment date, fixed on its ``cycles`` row the first time it is asked for (when the
    cycle is closed for settlement, ``prepare_cycle``): a run that wrote its files and then failed to
    commit is retried with the same date whatever the calendar became meanwhile, so it writes the same
    files byte for byte. The cycle's row exists: closing it made it."""
    kept = tx.session.execute(select(Cycle.payment_date).where(Cycle.cycle_date == cycle)).scalar_one_or_none()
    if kept is not None:
        return kept
    pay_on = payment_date(tx, cycle)
    tx.session.execute(Cycle.__table__.update().where(Cycle.cycle_date == cycle, Cycle.payment_date.is_(None))
                       .values(payment_date=pay_on))
    return pay_on


def rewrite_cycle_files(tx: Tx, run: SettlementRun, key: Ed25519PrivateKey) -> Path:
    """Write a settled cycle's lost directory again, byte for byte as its run wrote it.

    The files depend only on the ledger, the cycle's payment date (kept with its settlements), its
    ledger position and the checkpoint at cut-off (both kept when it was settled): recomputed as
    ``pointsnet reconcile`` does, in the run's format version (the newest first, then older ones), they
    are put in place only when the manifest's SHA-256 is the one the run stored. Ed25519 signatures are
    deterministic, so the signature is the run's too while the network key is the same. Otherwise
    nothing is written and SettlementDirectoryMissing says how to restore the directory."""
    cycle = run.cycle_date
    target = run_directory(tx, cycle)
    kept_date = tx.session.execute(select(Settlement.payment_date).where(Settlement.cycle_date == cycle)
                                   .limit(1)).scalar_one_or_none()
    if kept_date is None:  # a cycle without a settlement row (nothing moved): its row's, if it was fixed there
        kept_date = tx.session.execute(select(Cycle.payment_date).where(Cycle.cycle_date == cycle)).scalar()
    pay_on = kept_date or payment_date(tx, cycle)
    position = ledger_position(tx, cycle)
    cutoff = cutoff_of(cycle, tx.settings)
    checkpoint = cutoff_checkpoint(tx, cycle)
    with staged_directory(target) as staging:
        for version in range(FORMAT_VERSION, 0, -1):
            for leftover in staging.iterdir():  # an earlier version's attempt
                leftover.unlink()
            written = write_cycle(tx, cycle, staging, currency=tx.settings.currency, cutoff=cutoff,
                                  payment_date=pay_on, ledger_position=position, format_version=version,
                                  checkpoint=checkpoint if version >= 2 else None)
            if hashlib.sha256(written.manifest).hexdigest() == run.manifest_sha256:
                break
        else:
            raise SettlementDirectoryMissing(
                f"cycle {cycle} is settled but its directory {target} is missing, and recomputing it from the "
                f"ledger does not give the manifest its run wrote (SHA-256 {run.manifest_sha256}): restore the "
                f"directory from a backup of the data directory, then check it with `pointsnet reconcile`")
        write_synced(staging / "manifest.json", written.manifest)
        write_synced(staging / "manifest.json.sig", sign_manifest(written.manifest, key))
    return target


def _files_lost(directory: Path) -> bool:
    """A settled cycle's directory that lost a file: its manifest, or a file the manifest lists (the
    directory is then written again whole, once recomputing it gives the manifest its run wrote)."""
    from shared.settlement.reconcile import MANIFEST, read_manifest
    from shared.settlement.signed_manifests import listed_files_missing

    try:
        manifest, _unreadable = read_manifest((directory / MANIFEST).read_bytes())
    except FileNotFoundError:
        return True
    except OSError:  # there but unreadable: reconcile names it; nothing is replaced on a guess
        return False
    return manifest is not None and bool(listed_files_missing(directory, manifest))


def missing_directories(tx: Tx, limit: int = 100) -> list[tuple[str, str, str]]:
    """``pointsnet verify``: the network's settled cycles (``of_the_network``) whose directory is not in
    the data directory, as (check, cycle date, detail), at most ``limit``. Only on a host that keeps the
    settlement files, whose data directory has ``settlements/``: a read-only replica's host, with the
    network's keys and no files, verifies the ledger without them."""
    if missing(tx.settings.data_dir / "settlements"):
        return []
    found = []
    for cycle in tx.session.execute(select(SettlementRun.cycle_date).where(
            of_the_network(SettlementRun.cycle_date)).order_by(SettlementRun.cycle_date)).scalars():
        directory = run_directory(tx, cycle)
        if missing(directory):
            found.append(("settlement_directory_missing", cycle.isoformat(),
                          f"the cycle is settled but {directory} is missing: `pointsnet clearing run --cycle "
                          f"{cycle.isoformat()}` writes it again from the ledger"))
            if len(found) >= limit:
                break
    return found


def directories_ahead(tx: Tx, limit: int = 100) -> list[tuple[str, str, str]]:
    """``pointsnet verify``: the cycle directories in the data directory's ``settlements/`` whose cycle the
    database has not settled, as (check, cycle date, detail), at most ``limit``: a database restored
    from a backup older than the files partners already fetched (``refuse_a_directory_ahead``)."""
    root = tx.settings.data_dir / "settlements"
    if missing(root):
        return []
    named = {}
    for path in root.iterdir():  # staging (hidden) and other names are not cycles
        try:
            named[date.fromisoformat(path.name)] = path
        except ValueError:
            continue
    if not named:
        return []
    settled = set(tx.session.execute(select(SettlementRun.cycle_date).where(
        SettlementRun.cycle_date.in_(sorted(named)))).scalars())
    return [("settlement_directory_ahead", cycle.isoformat(),
             f"{named[cycle]} is there but the database has not settled the cycle: a settlement that failed "
             f"after writing its files (its next run puts the same files there), or a database behind the "
             f"settlement files (restored from an older backup?): see docs/operations.md, \"Restoring\"")
            for cycle in sorted(named) if cycle not in settled and named[cycle].is_dir()][:limit]


def settle_cycle(tx: Tx, cycle: date, key: Ed25519PrivateKey, *, ignore_grace: bool = True) -> dict:
    """Close and settle one cycle. For a cycle already settled, change nothing and say so; only if its
    directory is missing or lost a file (``_files_lost``), write it again (``rewrite_cycle_files``) and say
    that."""
    done = _settled_or_ready(tx, cycle, ignore_grace)
    if done is not None:
        target, rewritten = run_directory(tx, cycle), False
        if missing(target) or _files_lost(target):
            rewrite_cycle_files(tx, done, key)
            rewritten = True
        return {"cycle_date": cycle.isoformat(), "run_id": done.run_id, "directory": str(target),
                "already_settled": True, "rewritten": rewritten}
    close_cycle(tx, cycle)
    pay_on = fixed_payment_date(tx, cycle)
    target = run_directory(tx, cycle)
    # the reports' per-cycle sums, committed with the settlement or not at all, written while other
    # connections write the statements (PostgreSQL)
    files = write_cycle_files(tx, cycle, pay_on, target, key, meanwhile=lambda: roll_up_settling(tx, cycle))
    failpoint("settlement.after_files")
    run_id = new_id("run")
    tx.session.execute(insert(SettlementRun.__table__).values(
        cycle_date=cycle, run_id=run_id, directory=str(target),
        manifest_sha256=hashlib.sha256(files.manifest).hexdigest(), settled_at=tx.now))
    draws = {party: draw for party, draw in float_draws(tx, cycle).items() if party in files.net_positions}
    floats = settled_from_float(draws, files.net_positions)
    for party, draw in draws.items():  # what the floats did not hold is due by bank now, not from them
        credit_settled_by_bank(tx, party, cycle, draw.short_minor)
    # the float gave the exact lines, the statement settles their rounded sum: the difference goes back
    # to the float (signed), so the float gave exactly what the statement says
    rounding = {party: draw.rounding_micro for party, draw in draws.items()}
    parties = [{"cycle_date": cycle, "party": party, "net_minor": net, "from_float_minor": floats.get(party, 0),
                "float_rounding_micro": rounding.get(party, 0),
                "payment_date": pay_on, "status": "due" if net + floats.get(party, 0) else "nothing_due"}
               for party, net in files.net_positions.items()]
    if parties:
        tx.session.execute(insert(Settlement.__table__), parties)
    record_settlement_ready(tx, cycle, pay_on, files.net_positions, hashlib.sha256(files.manifest).hexdigest(),
                            from_float=floats)
    return {"cycle_date": cycle.isoformat(), "run_id": run_id, "directory": str(target), "already_settled": False,
            "net_positions": files.net_positions}


def settled_from_float(draws: dict[str, FloatDraw], positions: dict[str, int]) -> dict[str, int]:
    """Per party of the cycle: the part of its net settled from prepaid floats, not by bank.

    A partner with a float enforced now has the part of its cycle's rounded ``prepaid_funding`` sum
    that its float held (``limits.float_draws``: it paid that in advance by top-ups; what the float
    did not hold moves by bank); the network, which those lines pay, has minus their total (it
    received that money with the top-ups). So what moves by bank, ``net + from float``, sums to
    zero over the parties as the nets do. Stored with the settlement: a float enforced or removed
    later does not change a settled cycle's.
    """
    drawn = {party: draw.from_float_minor for party, draw in draws.items()
             if party in positions and draw.from_float_minor}
    if drawn and NETWORK in positions:
        drawn[NETWORK] = -sum(drawn.values())
    return {party: amount for party, amount in drawn.items() if amount}


DUE_PER_RUN = 31  # cycles one settlement job run settles at most: a long backlog is caught up a month a run


_FIRST_CYCLE = select(func.min(Entry.cycle_date))


def first_cycle(tx: Tx) -> date | None:
    """The network's first cycle: the business day of its first ledger entry (None before any entry).

    No obligation line, and so no money, lies before it; a day before it is no cycle of the network
    (a manual run of one is refused). Not the earliest ``cycles`` row: a settlement by hand made one
    for any day it was given before it refused such days, and a unit that wrote no entry (a buy-out
    of a partner without open lots) may make one too. Entries only ever join the open cycle, so the
    answer never moves back; ``entries.cycle_date`` is indexed, so this is one index lookup."""
    return tx.session.execute(_FIRST_CYCLE).scalar_one_or_none()


def of_the_network(cycle_column):
    """SQL: ``cycle_column`` (a cycle date) is a cycle of the network, from its first cycle
    (``first_cycle``, looked up in the same statement) on; false for every row of a network without
    an entry. What ``clearing list``, the dashboard's settlement pages and ``GET /v1/statements``
    show: a settlement of an earlier day (a typo run by hand before such runs were refused, or a day
    an older merge, erasure or buy-out left a ``cycles`` row for) is no cycle of the network."""
    return cycle_column >= _FIRST_CYCLE.scalar_subquery()


def due_cycles(tx: Tx, limit: int = DUE_PER_RUN) -> list[date]:
    """Cycles that ended more than the grace period ago and are not settled, oldest first, at most ``limit``.

    Every business day from the network's first cycle (``first_cycle``) on is one, a day without a
    single entry too: it has no ``cycles`` row (a day's first posting makes it), and settling it
    writes its empty, signed set, so finance gets a directory for every day. A network without an
    entry has none due."""
    first = first_cycle(tx)
    if first is None:
        return []
    grace = timedelta(minutes=tx.settings.settlement_grace_minutes)
    last = cycle_date_for(tx.now - grace, tx.settings) - timedelta(days=1)  # newest whose end + grace passed
    settled = set(tx.session.execute(select(SettlementRun.cycle_date).where(
        SettlementRun.cycle_date >= first, SettlementRun.cycle_date <= last)).scalars())
    due: list[date] = []
    day = first
    while day <= last and len(due) < limit:
        if day not in settled:
            due.append(day)
        day += timedelta(days=1)
    return due
