"""The partner log's ``time`` column is read, not ignored: with a ``time`` header, a line whose time is
not an RFC 3339 instant is refused naming its line. A line that left its time out, where an unquoted
``1,234.50`` then fills the time field, is never read as an amount of 1 (CLI and dashboard alike). An
empty time is no time given; a log without the column is read as before."""

from __future__ import annotations

import pytest

from shared.money import to_micro
from shared.settlement.reconcile import PartnerLogError, read_partner_log
from tests.clearing import test_reconcile_damaged as damaged
from tests.clearing.test_reconcile_damaged import log_file, one_line_error, reconcile_log

settled = damaged.settled  # BookMart's settled cycle of the reconcile tests

HEADER = "reference,kind,points,amount,time\n"


@pytest.mark.parametrize("time", ["234.50", "x", "2026-11-20", "2026-11-20 02:00:00", "2026-11-20T02:00:00",
                                  "2026-02-30T02:00:00Z"])
def test_a_time_that_is_not_an_rfc3339_instant_is_refused_naming_its_line(time):
    with pytest.raises(PartnerLogError, match=r"^partner log line 3: time: .* is not an RFC 3339 instant"):
        read_partner_log(HEADER + "book-2,burn,5,0,2026-11-20T02:00:00Z\n" + f"book-1,burn,200,190,{time}\n")


def test_an_unquoted_thousands_separator_with_the_time_left_out_is_not_an_amount_of_one():
    with pytest.raises(PartnerLogError, match=r"^partner log line 2: time: '234.50' is not an RFC 3339 instant"):
        read_partner_log(HEADER + "book-1,burn,200,1,234.50\n")


@pytest.mark.parametrize("time", ["2026-11-20T02:00:00Z", "2026-11-20T10:00:00.123456+08:00", "", " "])
def test_an_rfc3339_or_empty_time_is_read(time):
    assert read_partner_log(HEADER + f"book-1,burn,200,1234.50,{time}\n") == \
        {"book-1": [{"line": 2, "kind": "burn", "points": 200, "amount": to_micro("1234.50")}]}


def test_the_command_line_refuses_the_line_in_one_line(settled, tmp_path):
    log = log_file(tmp_path, "book-2,burn,5,0,2026-11-20T02:00:00Z", "book-1,burn,200,1,234.50")
    done = reconcile_log(settled, log)
    assert one_line_error(done) and "partner log line 3: time: '234.50' is not an RFC 3339 instant" in done.stderr, \
        done.stderr
    assert "no breaks" not in done.stdout and "amount_mismatch" not in done.stdout
