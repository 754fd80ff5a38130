"""Settlement of cycles, prepaid floats, exposure, payments and reconciliation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.markup import escape

from services.cli import (TROUBLE, app, clearing_app, console, err, fail, literal, show, _network, _read_csv,
                          _signing_network, whole_minor)


def _cycle(text: str):
    """A cycle typed on the command line: YYYY-MM-DD, one reports can cover (EARLIEST … LATEST; the
    last day of the calendar has no cut-off, the day after it does not exist)."""
    from shared.clock import parse_date
    from shared.reports.period import EARLIEST, LATEST

    try:
        day = parse_date(text)
    except ValueError:
        fail(f"--cycle must be a date YYYY-MM-DD, not {text!r}")
    if not EARLIEST <= day <= LATEST:
        fail(f"--cycle lies between {EARLIEST} and {LATEST}, not {text}")
    return day


@clearing_app.command("run")
def clearing_run(cycle: str = typer.Option(..., help="The cycle (business day) to settle, YYYY-MM-DD.")) -> None:
    """Close and settle one cycle by hand; for a settled cycle, change nothing and say so (only a
    settled cycle's missing directory, or one that lost a file, is written again, byte for byte as its run
    wrote it)."""
    try:
        result = _signing_network().settle(_cycle(cycle))
    except OSError as exc:  # the files' directory (the data directory's settlements/) cannot be written
        # until 2026-12-07 a traceback; the cycle stays closed, unsettled, and is settled once it can be
        fail(f"cycle {cycle}'s settlement files cannot be written in {exc.filename or 'the data directory'}: "
             f"{exc.strerror or exc} (POINTSNET_DATA_DIR); nothing was settled", TROUBLE)
    if result.get("rewritten"):
        err.print(f"cycle {cycle} was already settled; its directory was missing or had lost a file, and has been "
                  f"written again from the ledger, byte for byte as its run wrote it", highlight=False, soft_wrap=True)
    elif result["already_settled"]:
        err.print(f"cycle {cycle} was already settled; nothing changed")
    print(json.dumps({"cycle_date": result["cycle_date"], "run_id": result["run_id"],
                      "directory": result["directory"]}))


@clearing_app.command("list")
def clearing_list(as_json: bool = typer.Option(False, "--json", help="Print a JSON list of the settlements, "
                                                                      "one object per row, whole values.")) -> None:
    """Settlements per cycle and party, with their payment status (overdue flagged)."""
    from sqlalchemy import select

    from shared.ledger.cycles import cycle_date_for
    from shared.models import Settlement
    from shared.settlement.finance import amounts, paid_sums
    from shared.settlement.runs import of_the_network

    def settlements(tx):
        """From the network's first cycle on (``of_the_network``): a settlement of an earlier day (a typo
        run by hand before such runs were refused) is no cycle of the network. With the sum of each one's
        payments recorded so far."""
        rows = tx.session.execute(select(Settlement).where(of_the_network(Settlement.cycle_date)).order_by(
            Settlement.cycle_date, Settlement.party)).scalars().all()
        paid = paid_sums(tx, of_the_network(Settlement.cycle_date))
        return [(row, paid.get((row.cycle_date, row.party), 0)) for row in rows]

    network = _network(readonly=True)
    today = cycle_date_for(network.clock.now(), network.settings)  # the network's business day, as the dashboard's
    rows = [{"cycle_date": row.cycle_date.isoformat(), "party": row.party, "net_minor": row.net_minor,
             "from_float_minor": row.from_float_minor,  # kept by settlement: what the float settled then
             "by_bank_minor": row.by_bank_minor} | amounts(row.status, row.by_bank_minor, paid)
            | {"payment_date": row.payment_date.isoformat(), "status": row.status,
               "overdue": row.status == "due" and row.payment_date < today, "bank_reference": row.bank_reference}
            for row, paid in network.tx(settlements, readonly=True)]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("cycle", "party", "net (minor units)", "from float", "by bank", "paid", "outstanding",
                  "payment date", "status", "bank reference")
    for row in rows:
        table.add_row(row["cycle_date"], escape(row["party"]), str(row["net_minor"]),
                      str(row["from_float_minor"]) if row["from_float_minor"] else "", str(row["by_bank_minor"]),
                      str(row["paid_minor"]), str(row["outstanding_minor"]), row["payment_date"], "[red]overdue[/]" if row["overdue"] else row["status"],
                      escape(row["bank_reference"] or ""))
    show(table)  # piped: as wide as its widest row (services.cli.show)


@clearing_app.command("top-up")
def clearing_top_up(partner_id: str,
                    amount: str = typer.Option(..., help="Money received into the float, in minor units "
                                                         "(digits only, e.g. 120000 for 1,200.00 CNY)."),
                    bank_reference: str = typer.Option(..., help="The bank's reference of the transfer.")) -> None:
    """Record a prepaid partner's top-up of its float (the same bank reference twice changes nothing)."""
    from shared.access import audit
    from shared.partners.limits import record_topup

    amount = whole_minor(amount, "--amount")

    def unit(tx):
        done = record_topup(tx, partner_id, amount, bank_reference)
        if done["recorded"]:  # money recorded, in its unit: audited (user cli)
            audit.record(tx, None, "float.topup_recorded", partner_id, amount_minor=amount,
                         bank_reference=bank_reference.strip(), topup_id=done["topup_id"])
        return done

    print(json.dumps(_network().tx(unit)))


@clearing_app.command("float")
def clearing_float(partner_id: str) -> None:
    """A prepaid partner's float: top-ups, prepaid funding drawn, balance and headroom; prints JSON."""
    from shared.partners.contracts import require_partner
    from shared.partners.limits import float_status

    def unit(tx):
        require_partner(tx, partner_id)
        return float_status(tx, partner_id)

    print(json.dumps(_network(readonly=True).tx(unit, readonly=True)))


@clearing_app.command("exposure")
def clearing_exposure(as_json: bool = typer.Option(False, "--json"),
                      alert: bool = typer.Option(False, "--alert", help="Also raise alerts (as the hourly job does).")
                      ) -> None:
    """Every partner's outstanding postpaid points, their value and its exposure limit."""
    from shared.partners.limits import check_exposure, exposures

    network = _network(readonly=not alert)  # without --alert it only reads
    if alert:
        network.tx(check_exposure)
    rows = [e.json() for e in network.tx(exposures, readonly=True)]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("partner", "outstanding points", "value (minor units)", "limit", "state", title="exposure")
    colour = {"exceeded": "red", "near": "yellow"}
    for row in rows:
        state = row["state"]
        table.add_row(literal(row["name"]), str(row["outstanding_points"]), str(row["value_minor"]),
                      "" if row["limit_minor"] is None else str(row["limit_minor"]),
                      f"[{colour[state]}]{state}[/]" if state in colour else state)
    show(table)


@clearing_app.command("mark-paid")
def clearing_mark_paid(cycle: str = typer.Option(...), party: str = typer.Option(...),
                       bank_reference: str = typer.Option(..., help="The bank's reference of the transfer."),
                       amount: Optional[str] = typer.Option(
                           None, help="What the transfer moved, in major units as a plain decimal with at "
                                      "most the currency's places (1234.56 for CNY, 1234 for JPY, 1234.567 for "
                                      "KWD); without it, the whole amount outstanding.")) -> None:
    """Record a bank transfer against a settlement with its bank reference (and its amount, when it paid
    only part): the settlement is paid (or received) once its transfers add up to its by-bank amount."""
    from shared.money import MoneyError, major_to_minor
    from shared.settlement.finance import record_payment

    day = _cycle(cycle)
    network = _network()
    amount_minor = None
    if amount is not None:
        try:
            amount_minor = major_to_minor(amount, network.settings.currency, what="--amount")
        except MoneyError as exc:
            fail(str(exc))
    from shared.access import audit
    from shared.settlement.positions import payment_target

    def unit(tx):  # audited as the dashboard's approved settlement_paid is, by the command line
        outcome = record_payment(tx, day, party, bank_reference, amount_minor)
        audit.record(tx, None, "settlement_paid", payment_target(day, party), outcome=outcome, params={
            "cycle_date": day.isoformat(), "party": party, "bank_reference": bank_reference,
            "amount_minor": amount_minor})
        return outcome

    print(json.dumps(network.tx(unit)))


def _found(test) -> bool:
    """A path test (``path.is_dir``, ``path.exists``); False for a name the file system cannot look up,
    longer than it allows: a wrong value is one line, never a traceback."""
    try:
        return test()
    except OSError:
        return False


@app.command()
def reconcile(
    directory: Path,
    partner: Optional[str] = typer.Option(None, help="Match this partner's own log against its statement."),
    partner_log: Optional[Path] = typer.Option(None, help="The partner's log: CSV reference,kind,points,amount,time."),
    breaks_csv: Optional[Path] = typer.Option(None, help="Also write the breaks report here as CSV."),
) -> None:
    """Verify a settlement directory against its signature and the ledger; or report a partner's breaks."""
    from shared.settlement import positions
    from shared.settlement.files import statement_name
    from shared.settlement.reconcile import (PartnerLogError, ScratchUnavailable, match_partner_log,
                                             verified_statement, verify_cycle_directory)
    from shared.signing_keys import public_keys as network_public_keys

    if not _found(directory.is_dir):
        fail(f"{directory} is not a settlement directory")
    network = _network(readonly=True)  # a check: it reads the directory, the log and the ledger
    current = network.signing_key.public_key()
    # the current key and every key a rotation retired: a manifest signed before a rotation still verifies
    public_keys = network.tx(lambda tx: network_public_keys(tx, current), readonly=True)
    if partner or partner_log:
        if not (partner and partner_log):
            fail("--partner and --partner-log go together")
        if not _found((directory / statement_name(partner)).exists):
            fail(f"no statement for {partner} in {directory}")
        log = _read_csv(partner_log)  # before the transaction: a missing log is one line, not a traceback
        try:  # only the statement the network signed, read once: those bytes are matched
            statement = verified_statement(directory, partner, public_keys)
            breaks = network.tx(lambda tx: match_partner_log(tx, statement, partner, log), readonly=True)
        except PartnerLogError as exc:  # the log given is not one to match: the operator's to fix
            fail(str(exc))
        except ValueError as exc:  # the statement is not the one the network signed: a finding
            fail(str(exc), TROUBLE)
        table = Table("reference", "break", "ours", "theirs", "reason", title=f"breaks for {literal(partner)}")
        for item in breaks:
            table.add_row(*(escape(str(cell)) for cell in (item.reference, item.kind, item.ours, item.theirs,
                                                           item.reason)))  # the partner's text, not markup
        show(table if breaks else "no breaks: the partner's log matches its statement")
        if breaks_csv:
            try:
                breaks_csv.write_text(positions.breaks_csv(breaks), encoding="utf-8", newline="")  # as the dashboard gives it
            except OSError as exc:
                fail(f"cannot write the breaks report to {breaks_csv}: {exc.strerror or exc}")
        if breaks:
            raise typer.Exit(1)
        return
    try:
        cycle, findings = network.tx(lambda tx: verify_cycle_directory(tx, directory, public_keys), readonly=True)
    except ScratchUnavailable as exc:  # a read-only /tmp: one line, not a traceback
        fail(exc.detail, TROUBLE)
    for finding in findings:
        err.print(escape(f"{finding.check}: {finding.subject}: {finding.detail}"), highlight=False)
    if findings:
        err.print(f"[bold red]NOT RECONCILED[/]: {len(findings)} difference(s)")
        raise typer.Exit(1)
    console.print(f"[green]reconciled[/]: cycle {cycle.isoformat()}: signature, digests, control totals and "
                  f"recomputation match ({escape(str(directory))})")
