"""``pointsnet bench peers`` (b): python-accounting posting the journal entries the batch post (a) wrote.

python-accounting (a maintained double-entry library on SQLAlchemy) is an optional extra
(``pip install '.[bench]'``), never a runtime dependency. After (a) ran, (a)'s entries are read back with
their transfers (untimed), each ledger account becomes a python-accounting Account in a fresh database on
the same PostgreSQL server (untimed), and posting each entry as one JournalEntry with its line items is
timed: one transfer is a simple JournalEntry (its credit account the main account, a line item debiting
the debit account); several make a compound one (the first transfer's credit as the main account, a
debit line item and a credit line item for every other transfer). Points are posted as Decimal amounts
of one currency. The scenario then fails unless the library's trial balance gives every account the
balance our transfers sum to, its debit and credit totals (it nets each account type) are what our
transfers give, and its ledger holds as many points on each side as the transfers moved.

python-accounting runs in a child process: importing it registers listeners on SQLAlchemy's ``Session``
class itself (every session of the process; they filter each query by ``session.entity``, which
pointsnet's sessions do not have), so in this process it would break the ledger. Its setup and the
checks are untimed; before the checks an index is added to its ledger (the trial balance sums each
account's rows in several queries per account, which without it took minutes at full scale).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from importlib import metadata, util
from pathlib import Path

# python-accounting sends 22 statements and a commit per entry and numbers each by counting the journal
# entries before it: at the 31-35 entries/s measured (docs/benchmarks.md, 2026-12-05) the ~99,000 entries
# of a full run would take about an hour, far over the ~5 minutes allowed it. So it posts (a)'s leading
# entries (in the ledger's listing order), under 3 minutes, and its rate per entry is projected over all
# of (a)'s entries
ACCOUNTING_ENTRIES = 5_000
NOT_INSTALLED = ("not installed (pip install '.[bench]', or pip install --no-deps python-accounting "
                 "psycopg2-binary python-dateutil)")
# python-accounting's account type for each kind of ledger account (they only place it in the reports)
ACCOUNT_TYPES = {"member": "CURRENT_LIABILITY", "member_held": "CURRENT_LIABILITY",
                 "partner_issued": "CURRENT_ASSET", "partner_redeemed": "CURRENT_LIABILITY", "network": "EQUITY"}


def installed_version() -> str | None:
    """python-accounting's version when it can be imported (without importing it: see the module's doc)."""
    if util.find_spec("python_accounting") is None:
        return None
    try:
        return metadata.version("python-accounting")
    except metadata.PackageNotFoundError:  # importable without its distribution's metadata
        return "unknown"


def read_entries(engine, limit: int) -> tuple[list, dict[str, str], int]:
    """(a)'s first ``limit`` entries in listing order with their transfers, the kinds of the accounts they
    name, and how many entries (a) wrote in all."""
    from sqlalchemy import text

    with engine.connect() as conn:
        total = conn.execute(text("SELECT COUNT(*) FROM entries")).scalar_one()
        rows = conn.execute(text(
            "SELECT e.id, t.debit_account, t.credit_account, t.points FROM "
            "(SELECT id, xid FROM entries ORDER BY xid, id LIMIT :n) e JOIN transfers t ON t.entry_id = e.id "
            "ORDER BY e.xid, e.id, t.id"), {"n": limit}).all()
        kinds = dict(conn.execute(text("SELECT id, kind FROM accounts")).all())
    entries: dict[str, list] = {}
    for entry_id, debit, credit, points in rows:
        entries.setdefault(entry_id, []).append([debit, credit, int(points)])
    named = {account for transfers in entries.values() for t in transfers for account in t[:2]}
    return list(entries.items()), {account: kinds[account] for account in named}, total


def run_child(url: str, entries: list, kinds: dict[str, str], console) -> dict:
    """Post ``entries`` with python-accounting in a child process on the database ``url``; a Rich bar shows
    its progress. Returns the child's figures (raw: checked by ``check``)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from sqlalchemy.engine import make_url

    child_url = make_url(url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(__file__).resolve().parents[1])] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    with tempfile.TemporaryFile("w+") as errors, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console) as progress:
        task = progress.add_task("peers (b): python-accounting", total=len(entries))
        proc = subprocess.Popen([sys.executable, "-m", "services.bench_peers_accounting"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
        proc.stdin.write(json.dumps({"url": child_url, "entries": entries, "kinds": kinds}))
        proc.stdin.close()
        result = None
        for line in proc.stdout:
            word, _, rest = line.partition(" ")
            if word == "progress":
                progress.update(task, completed=int(rest))
            elif word == "checking":
                progress.add_task("peers (b): its trial balance, for the checks (untimed)", total=None)
            elif word == "result":
                result = json.loads(rest)
        if proc.wait() or result is None:
            errors.seek(0)
            raise RuntimeError(f"python-accounting's child process failed ({proc.returncode}):\n"
                               + errors.read()[-4000:])
    return result


def check(figures: dict, entries: list, kinds: dict[str, str]) -> None:
    """python-accounting's balances for the posted entries are what our transfers sum to."""
    net: dict[str, int] = defaultdict(int)
    for _, transfers in entries:
        for debit, credit, points in transfers:
            net[debit] += points
            net[credit] -= points
    expected = {account: Decimal(v) for account, v in net.items() if v}
    closings = {account: Decimal(v) for account, v in figures["closing_balances"].items() if Decimal(v)}
    if closings != expected:
        wrong = sorted(set(closings.items()) ^ set(expected.items()))[:5]
        raise AssertionError(f"python-accounting's trial balance differs from our transfers: {wrong}")
    moved = sum(points for _, transfers in entries for *_, points in transfers)
    # the trial balance nets the accounts of each account type, and puts each type's net on one side
    by_type: dict[str, int] = defaultdict(int)
    for account, v in expected.items():
        by_type[ACCOUNT_TYPES[kinds[account]]] += v
    debit = sum(v for v in by_type.values() if v > 0)
    if (Decimal(figures["trial_balance_debit"]), Decimal(figures["trial_balance_credit"])) != (debit, debit):
        raise AssertionError(f"trial balance totals {figures['trial_balance_debit']} / "
                             f"{figures['trial_balance_credit']}, our transfers {debit}")
    if (Decimal(figures["ledger_debit"]), Decimal(figures["ledger_credit"])) != (moved, moved):
        raise AssertionError(f"python-accounting's ledger holds {figures['ledger_debit']} / "
                             f"{figures['ledger_credit']} points, our transfers moved {moved}")
    if figures["journal_entries"] != len(entries):
        raise AssertionError(f"{figures['journal_entries']} journal entries posted of {len(entries)}")


def _post_all(url: str, entries: list, kinds: dict[str, str], report) -> dict:
    """In the child: set python-accounting up on ``url`` (untimed), post ``entries`` (timed), read back."""
    from python_accounting.config import config

    config.configure_database(url)
    from python_accounting.database.engine import engine
    from python_accounting.database.session import get_session
    from python_accounting.models import Account, Base, Currency, Entity, Ledger, LineItem
    from python_accounting.reports import TrialBalance
    from python_accounting.transactions import JournalEntry
    from sqlalchemy import func, select, text

    setup = time.perf_counter()
    Base.metadata.create_all(engine)
    with get_session(engine) as session:
        entity = Entity(name="Pointsnet peers")
        session.add(entity)
        session.commit()  # sets up the entity's reporting period
        currency = Currency(name="Points", code="PTS", entity_id=entity.id)
        session.add(currency)
        session.commit()
        ids, names = {}, sorted(kinds)
        for start in range(0, len(names), 500):  # the library scans the session's new objects per account
            chunk = [(name, Account(name=name, account_type=Account.AccountType[ACCOUNT_TYPES[kinds[name]]],
                                    currency_id=currency.id, entity_id=entity.id))
                     for name in names[start:start + 500]]
            session.add_all([account for _, account in chunk])
            session.commit()
            ids.update((name, account.id) for name, account in chunk)
        started = time.perf_counter()
        setup = started - setup
        for n, (entry_id, transfers) in enumerate(entries, 1):
            (debit, credit, points), *rest = transfers
            journal = JournalEntry(narration=f"pointsnet entry {entry_id}", reference=entry_id,
                                   transaction_date=datetime.now(), account_id=ids[credit], entity_id=entity.id,
                                   compound=bool(rest), main_account_amount=Decimal(points) if rest else 0)
            session.add(journal)
            session.flush()
            lines = [LineItem(narration="debit", account_id=ids[debit], amount=Decimal(points), entity_id=entity.id)]
            for d, c, p in rest:
                lines += [LineItem(narration="debit", account_id=ids[d], amount=Decimal(p), entity_id=entity.id),
                          LineItem(narration="credit", account_id=ids[c], amount=Decimal(p), credited=True,
                                   entity_id=entity.id)]
            session.add_all(lines)
            session.flush()
            for line in lines:
                journal.line_items.add(line)
            session.add(journal)
            journal.post(session)
            if n % 50 == 0 or n == len(entries):
                report(n)
        elapsed = time.perf_counter() - started
        report(None)
        # the trial balance sums each account's ledger rows in several queries per account; the library
        # has no index for them, which made this read-back (untimed, after the timed posting) take minutes
        session.connection().execute(text("CREATE INDEX peers_ledger_post_account ON ledger (post_account_id)"))
        session.connection().execute(text("ANALYZE"))
        session.commit()
        trial = TrialBalance(session)
        by_id = {v: k for k, v in ids.items()}
        closings = {by_id[account.id]: str(account.closing)
                    for section in trial.accounts.values() for categories in section.values()
                    for category in categories.values() for account in category["accounts"]}
        sides = dict(session.execute(
            select(Ledger.entry_type, func.sum(Ledger.amount)).group_by(Ledger.entry_type)).all())
        journals = session.scalar(select(func.count(JournalEntry.id)))
        return {"elapsed_s": elapsed, "setup_s": setup, "check_s": time.perf_counter() - started - elapsed,
                "journal_entries": journals, "accounts": len(ids), "closing_balances": closings,
                "trial_balance_debit": str(trial.result_amounts["DEBIT"]),
                "trial_balance_credit": str(trial.result_amounts["CREDIT"]),
                "ledger_debit": str(sides.get("Debit", 0)), "ledger_credit": str(sides.get("Credit", 0))}


def _child() -> None:
    request = json.load(sys.stdin)
    result = _post_all(request["url"], request["entries"], request["kinds"],
                       lambda n: print("checking" if n is None else f"progress {n}", flush=True))
    print("result " + json.dumps(result), flush=True)


if __name__ == "__main__":
    _child()
