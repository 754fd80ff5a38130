"""``pointsnet clearing mark-paid … --amount AMOUNT``: a payment of part of a settlement, typed in major units
as a plain decimal; ``clearing list`` shows what was paid so far and what is outstanding."""

from __future__ import annotations

import json
from datetime import date

import pytest

from tests.cli.inprocess import pointsnet as run_pointsnet
from tests.factories import make_member, make_partner

TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")
CYCLE = "2026-11-20"


@pytest.fixture
def settled(network, clock, database_url):
    """CoffeeCo pays 250 fen (¥2.50) by bank."""
    coffee = make_partner(network, "CoffeeCo", **TERMS)
    book = make_partner(network, "BookMart", **TERMS)
    member = make_member(network, coffee, also_linked_to=(book,))
    network.earn(coffee, member, "coffee-1", points=500)
    network.burn(book, member, "book-1", 200)
    clock.advance(days=4)  # the payment date (Monday 2026-11-23) has passed
    network.settle(date.fromisoformat(CYCLE))
    env = {"POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
           "POINTSNET_CLOCK": clock.now().isoformat().replace("+00:00", "Z"), "COLUMNS": None}
    return {"coffee": coffee, "book": book, "cli": lambda *args: run_pointsnet(*args, env=env)}


def mark_paid(settled, reference, *amount):
    return settled["cli"]("clearing", "mark-paid", "--cycle", CYCLE, "--party", settled["coffee"],
                          "--bank-reference", reference, *amount)


def one_line(done) -> bool:
    return "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0


def test_an_amount_in_major_units_records_part_of_the_settlement(settled):
    done = mark_paid(settled, "BK-1", "--amount", "2.00")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["status"], answer["paid_minor"], answer["outstanding_minor"]) == ("due", 200, 50)
    listed = {row["party"]: row for row in json.loads(settled["cli"]("clearing", "list", "--json").stdout)}
    assert (listed[settled["coffee"]]["paid_minor"], listed[settled["coffee"]]["outstanding_minor"]) == (200, 50)
    assert listed[settled["coffee"]]["status"] == "due" and listed[settled["coffee"]]["overdue"] is True
    table = settled["cli"]("clearing", "list").stdout
    row = next(line for line in table.splitlines() if settled["coffee"] in line)
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells[5:7] == ["200", "50"], table
    over = mark_paid(settled, "BK-2", "--amount", "0.51")
    assert over.returncode == 2 and one_line(over), over.stderr
    assert "amount_exceeds_due" in over.stderr and "has 50 outstanding" in over.stderr, over.stderr
    rest = mark_paid(settled, "BK-3", "--amount", "0.5")
    assert rest.returncode == 0 and json.loads(rest.stdout)["status"] == "paid", rest.stderr


@pytest.mark.parametrize("amount", ["1,234.56", "2.001", "-1", "+1", "NaN", "Infinity", "1e2", "", " ", ".5",
                                    "2.", "0x10", "１"])
def test_an_amount_that_is_not_a_plain_decimal_is_one_line_and_exit_2(settled, amount):
    done = mark_paid(settled, "BK-1", "--amount", amount)
    assert done.returncode == 2 and one_line(done) and "--amount" in done.stderr, (amount, done.stderr)
    listed = {row["party"]: row for row in json.loads(settled["cli"]("clearing", "list", "--json").stdout)}
    assert listed[settled["coffee"]]["outstanding_minor"] == 250


def test_an_amount_of_zero_is_refused(settled):
    done = mark_paid(settled, "BK-1", "--amount", "0.00")
    assert done.returncode == 2 and one_line(done) and "validation_failed" in done.stderr, done.stderr


def test_without_an_amount_the_whole_outstanding_is_paid(settled):
    done = mark_paid(settled, "BK-1")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["status"], answer["paid_minor"], answer["outstanding_minor"]) == ("paid", 250, 0)
