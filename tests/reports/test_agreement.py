"""Report totals agree with the ledger's postings and with the settlement runs (files and table)."""

import csv
import io
from datetime import date, datetime, timezone
from pathlib import Path

from sqlalchemy import func, select

from shared.ledger.queries import account_balance
from shared.models import Entry, Member, Settlement, SettlementRun, Transfer
from shared.partners.lifecycle import terminate
from shared.reports.network import network_report
from shared.reports.partner import partner_report
from shared.reports.period import Period
from shared.settlement.files import statement_name
from tests.factories import make_member, make_partner
from tests.reports.conftest import NOV20, NOV21, TERMS

PERIOD = Period.parse("2026-11-20", "2026-12-15")


def postings(tx, account: str, side: str, kinds=None) -> int:
    column = Transfer.debit_account if side == "debit" else Transfer.credit_account
    query = (select(func.coalesce(func.sum(Transfer.points), 0)).join(Entry, Entry.id == Transfer.entry_id)
             .where(column == account, Entry.cycle_date.between(PERIOD.first, PERIOD.last)))
    if kinds:
        query = query.where(Entry.kind.in_(kinds))
    return int(tx.session.execute(query).scalar_one())


def test_points_agree_with_the_ledger_postings(network, coalition):
    def check(tx):
        partners = [coalition[name] for name in ("coffee", "air", "book")]
        expired_total = 0
        for p in partners:
            report = partner_report(tx, p, PERIOD)
            issued_account, redeemed_account = f"partner:{p}:issued", f"partner:{p}:redeemed"
            assert report["points"]["issued"] == postings(tx, issued_account, "debit")
            assert report["points"]["issue_reversed"] == postings(tx, issued_account, "credit")
            assert report["points"]["redeemed_here"] == (postings(tx, redeemed_account, "credit")
                                                         - postings(tx, redeemed_account, "debit"))
            # what the partner's account says is still out, less what expired or was spent elsewhere
            assert report["liability"]["outstanding_points"] == (
                -account_balance(tx, issued_account) - report["points"]["redeemed_elsewhere"]
                - report["points"]["redeemed_here_own_points"] - report["points"]["expired"])
            expired_total += report["points"]["expired"]
        network = network_report(tx, PERIOD)
        assert network["totals"]["expired"] == postings(tx, "network:expired", "credit") == expired_total
        assert network["totals"]["issued"] == sum(postings(tx, f"partner:{p}:issued", "debit") for p in partners)
        assert network["totals"]["redeemed"] == sum(
            postings(tx, f"partner:{p}:redeemed", "credit") - postings(tx, f"partner:{p}:redeemed", "debit")
            for p in partners)
        balances = tx.session.execute(select(func.sum(Member.available + Member.held))).scalar_one()
        assert network["liability"]["outstanding_points"] == balances
        matrix = {(c["funder"], c["redeemer"]): c["points"] for c in network["flow_matrix"]["cells"]}
        for row in network["leaderboard"]:
            assert row["redeemed_here"] == sum(v for (f, r), v in matrix.items() if r == row["partner_id"])
    network.tx(check, readonly=True)


def statement_records(directory: str, party: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO((Path(directory) / statement_name(party)).read_text())))


def money_agrees(tx, parties) -> int:
    """Every settled cycle's money figures of each party against its statement's S records, read by sign
    as a finance clerk reads them (+ received, − paid); returns the parties' total net."""
    runs = dict(tx.session.execute(select(SettlementRun.cycle_date, SettlementRun.directory)).all())
    settled = {(s.cycle_date.isoformat(), s.party): s.net_minor
               for s in tx.session.execute(select(Settlement)).scalars()}
    total = 0
    for p in parties:
        money = partner_report(tx, p, PERIOD)["money"]
        assert {c["cycle_date"] for c in money["cycles"]} == {cycle for cycle, party in settled if party == p}
        for cycle in money["cycles"]:
            records = statement_records(runs[date.fromisoformat(cycle["cycle_date"])], p)
            [net] = [int(r["amount_minor"]) for r in records if r["record_type"] == "N"]
            assert cycle["net_minor"] == net == settled[(cycle["cycle_date"], p)]
            sums = [r for r in records if r["record_type"] == "S"]
            fees = -sum(int(r["amount_minor"]) for r in sums if r["line_kind"] in ("issuance_fee", "redemption_fee"))
            received = sum(int(r["amount_minor"]) for r in sums
                           if r["line_kind"] == "redemption" and int(r["amount_minor"]) > 0)
            paid = -sum(int(r["amount_minor"]) for r in sums
                        if r["line_kind"] == "redemption" and int(r["amount_minor"]) < 0)
            assert (cycle["fees_paid_minor"], cycle["reimbursements_received_minor"],
                    cycle["reimbursements_paid_minor"]) == (fees, received, paid), (p, cycle, sums)
            assert cycle["net_minor"] == (cycle["reimbursements_received_minor"]
                                          + cycle["breakage_refunds_received_minor"] - cycle["fees_paid_minor"]
                                          - cycle["reimbursements_paid_minor"]
                                          - cycle["prepaid_funding_paid_minor"])
        total += money["totals"]["net_minor"]
    return total


def test_money_agrees_with_the_settlement_runs_and_statements(network, coalition):
    def check(tx):
        total = money_agrees(tx, [coalition[name] for name in ("coffee", "air", "book")])
        network = network_report(tx, PERIOD)
        assert total + network["network_revenue_minor"] == 0
        assert sum(row["net_minor"] for row in network["leaderboard"]) == total
    network.tx(check, readonly=True)


def test_a_burn_reversed_in_a_later_cycle_is_a_reimbursement_paid_back(network, clock):
    """BookMart reverses on Nov 21 part of a burn of CoffeeCo's points it took on Nov 20: on Nov 21 it pays
    CoffeeCo back (its S record is negative) and CoffeeCo receives it (positive), beside what each pays
    and receives that day as usual. The report reads each as the statement does, never a negative
    reimbursement received, nor a refund netted into what was paid."""
    coffee = make_partner(network, "CoffeeCo", **TERMS)
    book = make_partner(network, "BookMart", **TERMS)
    air = make_partner(network, "AirLink", **TERMS)
    member = make_member(network, coffee, also_linked_to=(book, air))
    network.earn(coffee, member, "c1", points=500)
    network.burn(book, member, "b1", 300)
    clock.set(datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc))
    network.reverse(book, "b1r", "b1", 53)
    network.burn(air, member, "a1", 100)  # CoffeeCo pays AirLink as usual that day
    network.earn(book, member, "k1", points=200)
    network.burn(coffee, member, "c2", 150)  # BookMart's points at CoffeeCo: CoffeeCo receives as usual
    clock.set(datetime(2026, 11, 22, 3, 0, tzinfo=timezone.utc))
    for cycle in (NOV20, NOV21):
        network.settle(cycle)

    def check(tx):
        money_agrees(tx, [coffee, book, air])
        [nov21] = [c for c in partner_report(tx, book, PERIOD)["money"]["cycles"] if c["cycle_date"] == "2026-11-21"]
        assert nov21["reimbursements_paid_minor"] > 0 and nov21["reimbursements_received_minor"] >= 0, nov21
    network.tx(check, readonly=True)


def test_network_liability_counts_bought_out_lots_and_equals_the_members_balances(network, clock):
    """docs/reports.md: the network's ``liability`` is over every lot, bought-out ones included (the points
    are still the members'); a partner's leaves out the lots it had bought out by the cut-off."""
    leaving = make_partner(network, "Leaving", **TERMS)
    staying = make_partner(network, "Staying", **TERMS)
    member = make_member(network, leaving, also_linked_to=(staying,))
    network.earn(leaving, member, "e1", points=500)
    network.earn(staying, member, "e2", points=200)
    network.tx(lambda tx: terminate(tx, leaving, settlement="buy_out", buy_out_rate_ppm=800_000))
    clock.set(datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc))
    network.settle(date(2026, 11, 20))
    period = Period.parse("2026-11-20", "2026-11-20")

    def check(tx):
        balances = tx.session.execute(select(func.sum(Member.available + Member.held))).scalar_one()
        assert balances == 700
        for rollup in (True, False):
            assert network_report(tx, period, rollup=rollup)["liability"]["outstanding_points"] == balances
            assert partner_report(tx, leaving, period, rollup=rollup)["liability"]["outstanding_points"] == 0
            assert partner_report(tx, staying, period, rollup=rollup)["liability"]["outstanding_points"] == 200
    network.tx(check, readonly=True)
