"""Clearing end to end: the design's worked example through settlement files and reconciliation."""

import csv
import io
from datetime import date, timedelta

import pytest
from sqlalchemy import select, text

from shared.models import Settlement
from shared.settlement.reconcile import match_partner_log, verify_directory
from shared.settlement.runs import CycleNotEnded
from shared.signing import network_key_id
from tests.factories import make_member, make_partner, verify_ok
from tests.interleave import Pause, overlap

TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")
CYCLE = date(2026, 11, 20)


@pytest.fixture
def worked_example(network, clock):
    coffee = make_partner(network, "CoffeeCo", **TERMS)
    air = make_partner(network, "AirLink", **TERMS)
    book = make_partner(network, "BookMart", **TERMS)
    member = make_member(network, coffee, also_linked_to=(air, book))
    network.earn(coffee, member, "coffee-1", points=500)
    clock.advance(minutes=5)
    network.earn(air, member, "air-1", points=300)
    clock.advance(minutes=5)
    network.burn(book, member, "book-1", 600)
    return {"coffee": coffee, "air": air, "book": book, "member": member}


def rows(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


def public_keys(network):
    key = network.signing_key
    return {network_key_id(key): key.public_key()}


def test_cycle_cannot_settle_before_it_ends(network, worked_example):
    with pytest.raises(CycleNotEnded):
        network.settle(CYCLE)


def test_worked_example_through_clearing(network, clock, worked_example):
    p = worked_example
    clock.advance(days=1)
    result = network.settle(CYCLE)
    assert not result["already_settled"]
    assert result["net_positions"] == dict(sorted({p["coffee"]: -550, p["air"]: -130, p["book"]: 570,
                                                    "network": 110}.items()))
    directory = network.settings.data_dir / "settlements" / CYCLE.isoformat()
    bilateral = {(r["payer"], r["payee"], r["line_kind"]): int(r["amount_minor"])
                 for r in rows(directory / "bilateral.csv") if r["record_type"] == "D"}
    assert bilateral == {
        (p["coffee"], "network", "issuance_fee"): 50, (p["air"], "network", "issuance_fee"): 30,
        (p["coffee"], p["book"], "redemption"): 500, (p["air"], p["book"], "redemption"): 100,
        (p["book"], "network", "redemption_fee"): 30,
    }
    summary = {r["party"]: int(r["net_minor"]) for r in rows(directory / "network-summary.csv")
               if r["record_type"] == "D"}
    assert summary == {p["coffee"]: -550, p["air"]: -130, p["book"]: 570, "network": 110}
    statement = rows(directory / f"statement-{p['book']}.csv")
    assert [r["record_type"] for r in statement] == ["H", "D", "D", "D", "D", "S", "S", "S", "N", "T"]
    assert [r for r in statement if r["record_type"] == "N"][0]["amount_minor"] == "570"
    # the counterparty's reference is not shown on BookMart's statement, its own is
    assert {r["reference"] for r in statement if r["record_type"] == "D"} == {"book-1"}
    # the payment date is the next business day (2026-11-20 is a Friday)
    assert {r["payment_date"] for r in statement if r["record_type"] == "N"} == {"2026-11-23"}
    assert network.tx(lambda tx: verify_directory(tx, directory, public_keys(network)), readonly=True) == []
    verify_ok(network)


def test_settling_twice_changes_nothing_and_files_are_byte_identical(network, clock, worked_example):
    clock.advance(days=1)
    first = network.settle(CYCLE)
    directory = network.settings.data_dir / "settlements" / CYCLE.isoformat()
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    again = network.settle(CYCLE)
    assert again["already_settled"] and again["run_id"] == first["run_id"]
    # a crash after the files were written but before the commit: the re-run writes the same bytes
    network.tx(lambda tx: tx.session.execute(text("DELETE FROM settlements")))
    network.tx(lambda tx: tx.session.execute(text("DELETE FROM settlement_runs")))
    rerun = network.settle(CYCLE)
    assert not rerun["already_settled"]
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before
    count = network.tx(lambda tx: tx.session.execute(text("SELECT COUNT(*) FROM settlement_runs")).scalar_one())
    assert count == 1


def test_closed_cycle_refuses_new_entries(network, clock, worked_example):
    from shared.errors import CycleClosed
    from shared.ledger.cycles import close_cycle

    network.tx(lambda tx: close_cycle(tx, CYCLE))
    with pytest.raises(CycleClosed):
        network.earn(worked_example["coffee"], worked_example["member"], "late", points=1)


def test_late_reversal_is_an_adjustment_in_the_current_cycle(network, clock, worked_example):
    p = worked_example
    clock.advance(days=1)
    network.settle(CYCLE)
    network.reverse(p["book"], "book-1-rev", "book-1", 100)  # returns 100 points to AirLink's lot
    clock.advance(days=1)
    network.settle(CYCLE + timedelta(days=1))
    directory = network.settings.data_dir / "settlements" / (CYCLE + timedelta(days=1)).isoformat()
    adjustments = [r for r in rows(directory / f"statement-{p['book']}.csv") if r["record_type"] == "A"]
    assert adjustments and all(r["original_cycle_date"] == CYCLE.isoformat() for r in adjustments)
    assert sum(int(r["points"]) for r in adjustments if r["line_kind"] == "redemption") == -100
    summary = {r["party"]: int(r["net_minor"]) for r in rows(directory / "network-summary.csv")
               if r["record_type"] == "D"}
    assert summary == {p["air"]: 100, p["book"]: -95, "network": -5}
    assert sum(summary.values()) == 0
    # the cycle's lines net negative (the reversal's): money flows from payee to payer, so the payee
    # pays and the payer receives; neither column is ever negative
    flows = {r["party"]: (int(r["pays_minor"]), int(r["receives_minor"]))
             for r in rows(directory / "network-summary.csv") if r["record_type"] == "D"}
    assert flows == {p["air"]: (0, 100), p["book"]: (100, 5), "network": (5, 0)}
    assert network.tx(lambda tx: verify_directory(tx, directory, public_keys(network)), readonly=True) == []


@pytest.mark.parametrize("generic", [False, True], ids=["default writer", "generic writer"])
def test_a_version_2_directory_keeps_its_negative_flows_and_still_reconciles(network, clock, worked_example,
                                                                             tmp_path, generic):
    """Format version 2 added a negative bilateral sum where it was (negative pays and receives); a
    version 2 directory of such a cycle is still recomputed that way, by either writer."""
    from shared.ledger.cycles import cycle_end
    from shared.settlement.calendar import payment_date
    from shared.settlement.runs import cutoff_checkpoint, ledger_position, sign_manifest
    from shared.settlement.streaming import write_cycle
    from tests.clearing.test_network_position import as_an_older_release_ran_it

    p = worked_example
    clock.advance(days=1)
    network.settle(CYCLE)
    network.reverse(p["book"], "book-1-rev", "book-1", 100)
    clock.advance(days=1)
    late = CYCLE + timedelta(days=1)
    network.settle(late)
    old = tmp_path / "v2" / late.isoformat()
    old.mkdir(parents=True)

    def write_v2(tx):
        return write_cycle(tx, late, old, currency=tx.settings.currency,
                           cutoff=cycle_end(late, tx.settings).isoformat().replace("+00:00", "Z"),
                           payment_date=payment_date(tx, late), ledger_position=ledger_position(tx, late),
                           format_version=2, checkpoint=cutoff_checkpoint(tx, late), generic=generic)

    written = network.tx(write_v2, readonly=True)
    (old / "manifest.json").write_bytes(written.manifest)
    (old / "manifest.json.sig").write_bytes(sign_manifest(written.manifest, network.signing_key))
    as_an_older_release_ran_it(network, late, written.manifest)
    flows = {r["party"]: (int(r["pays_minor"]), int(r["receives_minor"]))
             for r in rows(old / "network-summary.csv") if r["record_type"] == "D"}
    assert flows == {p["air"]: (-100, 0), p["book"]: (-5, -100), "network": (0, -5)}
    assert network.tx(lambda tx: verify_directory(tx, old, public_keys(network)), readonly=True) == []


def test_reconcile_catches_a_tampered_statement_and_a_tampered_ledger(network, clock, worked_example):
    p = worked_example
    clock.advance(days=1)
    network.settle(CYCLE)
    directory = network.settings.data_dir / "settlements" / CYCLE.isoformat()
    statement = directory / f"statement-{p['coffee']}.csv"
    original = statement.read_bytes()
    statement.write_bytes(original.replace(b"-500.000000", b"-400.000000", 1))
    findings = network.tx(lambda tx: verify_directory(tx, directory, public_keys(network)), readonly=True)
    assert {f.check for f in findings} >= {"digest", "control_totals", "recomputation"}
    statement.write_bytes(original)
    assert network.tx(lambda tx: verify_directory(tx, directory, public_keys(network)), readonly=True) == []
    network.tx(lambda tx: tx.session.execute(text(
        "UPDATE obligation_lines SET amount_micro = amount_micro + 1 WHERE kind = 'redemption_fee'")))
    findings = network.tx(lambda tx: verify_directory(tx, directory, public_keys(network)), readonly=True)
    assert [f.check for f in findings] == ["recomputation"] * len(findings) and findings


def test_partner_log_breaks(network, clock, worked_example):
    p = worked_example
    clock.advance(days=1)
    network.settle(CYCLE)
    directory = network.settings.data_dir / "settlements" / CYCLE.isoformat()
    statement = (directory / f"statement-{p['book']}.csv").read_bytes()
    good = "reference,kind,points,amount,time\nbook-1,burn,600,570,2026-11-20T02:10:00Z\n"
    assert network.tx(lambda tx: match_partner_log(tx, statement, p["book"], good)) == []
    bad = ("reference,kind,points,amount,time\nbook-1,burn,600,560,2026-11-20T02:10:00Z\n"
           "book-9,burn,10,10,2026-11-20T03:00:00Z\n")
    breaks = network.tx(lambda tx: match_partner_log(tx, statement, p["book"], bad))
    assert {(b.reference, b.kind) for b in breaks} == {("book-1", "amount_mismatch"), ("book-9", "missing_on_network")}


def test_finance_records_payments_and_sees_overdue(network, clock, worked_example):
    from shared.settlement.finance import AlreadyRecorded, NothingDue, overdue, record_payment

    p = worked_example
    clock.advance(days=1)
    network.settle(CYCLE)
    assert network.tx(lambda tx: overdue(tx, date(2026, 11, 23))) == []
    late = network.tx(lambda tx: overdue(tx, date(2026, 11, 24)))
    assert {row["party"] for row in late} == {p["coffee"], p["air"], p["book"], "network"}
    paid = network.tx(lambda tx: record_payment(tx, CYCLE, p["coffee"], "BANK-001"))
    assert paid["status"] == "paid" and paid["net_minor"] == -550
    received = network.tx(lambda tx: record_payment(tx, CYCLE, p["book"], "BANK-002"))
    assert received["status"] == "received"
    with pytest.raises(AlreadyRecorded) as again:  # not "nothing due": it was due, and is recorded
        network.tx(lambda tx: record_payment(tx, CYCLE, p["coffee"], "BANK-003"))
    when = clock.now().isoformat().replace("+00:00", "Z")
    assert again.value.code == "already_recorded" and again.value.detail == (
        f"the settlement of {p['coffee']} in cycle {CYCLE} is already paid: recorded {when} with bank reference "
        f"BANK-001")
    assert again.value.extra == {"status": "paid", "recorded_at": when, "bank_reference": "BANK-001"}
    with pytest.raises(AlreadyRecorded, match="is already received: .* with bank reference BANK-002$"):
        network.tx(lambda tx: record_payment(tx, CYCLE, p["book"], "BANK-004"))
    with pytest.raises(NothingDue, match=f"^no settlement due for nobody in cycle {CYCLE}$"):
        network.tx(lambda tx: record_payment(tx, CYCLE, "nobody", "BANK-005"))
    assert {row["party"] for row in network.tx(lambda tx: overdue(tx, date(2026, 11, 24)))} == {p["air"], "network"}


def test_two_clerks_recording_one_payment_at_once_record_it_once(network, clock, worked_example):
    """The first recording holds its transaction open; the second, begun meanwhile, finds the payment
    recorded once the first commits (and names the first's bank reference), rather than overwriting it."""
    from shared.settlement.finance import AlreadyRecorded, record_payment

    coffee = worked_example["coffee"]
    clock.advance(days=1)
    network.settle(CYCLE)
    pause = Pause()

    def first(tx):
        recorded = record_payment(tx, CYCLE, coffee, "BANK-FIRST")
        pause()
        return recorded

    both = overlap(lambda: network.tx(first),
                   lambda: network.tx(lambda tx: record_payment(tx, CYCLE, coffee, "BANK-SECOND")), pause)
    assert both.first["status"] == "paid" and isinstance(both.second, AlreadyRecorded), both.second
    assert both.second.extra["bank_reference"] == "BANK-FIRST"
    stored = network.tx(lambda tx: tx.session.execute(select(Settlement.bank_reference).where(
        Settlement.cycle_date == CYCLE, Settlement.party == coffee)).scalar_one(), readonly=True)
    assert stored == "BANK-FIRST"


def test_a_run_that_dies_after_writing_its_files_is_rerun_later_to_the_same_bytes(network, clock, worked_example,
                                                                                   monkeypatch):
    """The manifest carries the checkpoint at cut-off: it must not depend on when the re-run happens,
    nor on what the ledger did meanwhile (new entries sealed, new checkpoints signed)."""
    import shared.settlement.runs as runs
    from shared.ledger.cycles import cycle_date_for

    cycle = network.tx(lambda tx: cycle_date_for(tx.now, tx.settings), readonly=True)
    clock.advance(days=1)

    class PowerCut(Exception):
        pass

    def die(name):
        if name == "settlement.after_files":
            raise PowerCut(name)

    monkeypatch.setattr(runs, "failpoint", die)
    with pytest.raises(PowerCut):
        network.settle(cycle)
    directory = network.settings.data_dir / "settlements" / cycle.isoformat()
    first = {p.name: p.read_bytes() for p in directory.iterdir()}
    monkeypatch.undo()
    clock.advance(hours=5, minutes=17)  # later, and the ledger went on in the next cycle
    coffee, book, member = worked_example["coffee"], worked_example["book"], worked_example["member"]
    network.earn(coffee, member, "after-the-crash", points=40)
    network.seal()  # the sealing and checkpoint jobs ran meanwhile
    network.checkpoint()
    result = network.settle(cycle)
    assert not result["already_settled"]
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == first


@pytest.mark.parametrize("cycle, paid", [(date(2026, 11, 20), date(2026, 11, 23)),   # a Friday, with lines
                                          (date(2026, 11, 23), date(2026, 11, 24))],  # a quiet Monday
                         ids=["lines", "quiet-day"])
def test_a_rerun_after_a_crash_keeps_the_payment_date_though_the_calendar_changed(network, clock, monkeypatch,
                                                                                 cycle, paid):
    """The payment date is fixed when the cycle is closed for settlement (a unit committed before any file
    is written): a run that wrote its signed files and then died is retried with that date, though a
    holiday was added on it meanwhile, and writes the same bytes, a quiet day's too; so does writing a
    lost directory again. Until 2026-12-07 the retry computed the date again from the calendar and
    replaced the signed directory with another."""
    import shared.settlement.runs as runs
    from shared.settlement.calendar import add_calendar_day

    coffee = make_partner(network, "CoffeeCo", billing="postpaid", point_value="1", issuance_fee="0.1",
                          redemption_fee_rate="0")
    network.earn(coffee, make_member(network, coffee), "c1", points=500)  # the 20th: the network's first cycle
    clock.advance(days=(cycle - date(2026, 11, 20)).days + 1)

    def die(name):
        if name == "settlement.after_files":
            raise RuntimeError("the connection was lost")

    monkeypatch.setattr(runs, "failpoint", die)
    with pytest.raises(RuntimeError):
        network.settle(cycle)
    monkeypatch.undo()
    directory = network.settings.data_dir / "settlements" / cycle.isoformat()
    first = {p.name: p.read_bytes() for p in directory.iterdir()}
    assert f'"payment_date": "{paid.isoformat()}"'.encode() in first["manifest.json"]
    network.tx(lambda tx: add_calendar_day(tx, paid, "A day of mourning"))
    assert not network.settle(cycle)["already_settled"]
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == first
    kept = network.tx(lambda tx: set(tx.session.execute(select(Settlement.payment_date).where(
        Settlement.cycle_date == cycle)).scalars()), readonly=True)
    assert kept == {paid}
    for path in directory.iterdir():  # lost later: written again with the date it was settled with
        path.unlink()
    directory.rmdir()
    assert network.settle(cycle)["rewritten"]
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == first


# -- sums beyond 64 bits ------------------------------------------------------------------------------
# One line holds at most 2^63 - 1 micro-units (posting refuses more), but a cycle sums any number of
# lines: at a point value and issuance fee of 10^6 minor units, 9,000,000 points move 9 * 10^18.

HUGE = dict(billing="postpaid", point_value="1000000", issuance_fee="1000000", redemption_fee_rate="0")
POINTS = 9_000_000


def test_a_party_whose_lines_sum_beyond_64_bits_still_settles_and_reconciles(network, clock):
    """CoffeeCo pays 9 * 10^18 micro-units of issuance fee and as much of reimbursement: each sum fits
    a ledger amount, its statement's total (-1.8 * 10^19) does not. The cycle settles, its net is exact,
    and the directory verifies with no finding (before: control_totals 'out of range')."""
    coffee = make_partner(network, "CoffeeCo", **HUGE)
    book = make_partner(network, "BookMart", **HUGE)
    member = make_member(network, coffee, also_linked_to=(book,))
    network.earn(coffee, member, "coffee-1", points=POINTS)
    network.burn(book, member, "book-1", POINTS)
    clock.advance(days=1)
    result = network.settle(CYCLE)
    assert result["net_positions"] == {coffee: -2 * POINTS * 10**6 * 10**6 // 10**6,
                                       book: POINTS * 10**6, "network": POINTS * 10**6}
    statement = rows(network.settings.data_dir / "settlements" / CYCLE.isoformat() / f"statement-{coffee}.csv")
    assert statement[-1]["control_amount"] == f"-{2 * POINTS * 10**6}.000000"
    assert network.tx(lambda tx: verify_directory(tx, network.settings.data_dir / "settlements" / CYCLE.isoformat(),
                                                  public_keys(network)), readonly=True) == []


def test_a_cycle_whose_sum_of_one_kind_exceeds_64_bits_is_refused_clearly_and_writes_nothing(network, clock):
    """Three earns of 4,000,000 points: CoffeeCo's issuance fees to the network sum to 1.2 * 10^19
    micro-units, more than a ledger amount (and the report roll-ups) hold. Settlement refuses with a
    clear reason naming the cycle, the parties and the kind — not a database error (SQLite's integer
    overflow, PostgreSQL's bigint out of range) — and settles nothing."""
    from shared.settlement.netting import CycleSumTooLarge

    coffee = make_partner(network, "CoffeeCo", **HUGE)
    member = make_member(network, coffee)
    for n in range(3):
        network.earn(coffee, member, f"coffee-{n}", points=4_000_000)
    clock.advance(days=1)
    with pytest.raises(CycleSumTooLarge) as refusal:
        network.settle(CYCLE)
    assert refusal.value.code == "cycle_sum_too_large"
    assert str(refusal.value) == (
        f"cycle 2026-11-20 cannot be settled: its issuance_fee lines from {coffee} to network sum to "
        f"12000000000000.000000 minor units, more than one sum may hold (9223372036854.775807)")
    assert network.tx(lambda tx: tx.session.scalars(select(Settlement)).all(), readonly=True) == []
    assert not (network.settings.data_dir / "settlements" / CYCLE.isoformat()).exists()
