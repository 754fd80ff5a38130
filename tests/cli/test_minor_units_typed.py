"""Amounts of money typed on the command line are read from ASCII digits only: Python's int() took
"1_000" as 1000, "+5", " 7 " and other scripts' digits ("١٢٣" as 123), so a slip or a pasted value
recorded a top-up or a limit the operator did not mean (until 2026-12-07)."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_commands import pointsnet


@pytest.fixture
def prepaid(tmp_path) -> str:
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    return json.loads(pointsnet(tmp_path, "partners", "add", "Prepaid Shop", "--billing", "prepaid",
                                check=True).stdout)["partner_id"]


@pytest.mark.parametrize("typed", ["1_000", "+5", " 7 ", "١٢٣", "1.0", "1e3", "０", "", "-3"])
def test_a_top_up_or_a_limit_not_written_in_digits_is_refused_and_nothing_recorded(tmp_path, prepaid, typed):
    for command in (("clearing", "top-up", prepaid, "--amount", typed, "--bank-reference", "BANK-1"),
                    ("partners", "limits", prepaid, "--float-overdraft", typed),
                    ("partners", "limits", prepaid, "--exposure-limit", typed)):
        refused = pointsnet(tmp_path, *command)
        assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0, (command, refused.stderr)
        assert "Traceback" not in refused.stderr
    status = json.loads(pointsnet(tmp_path, "clearing", "float", prepaid, check=True).stdout)
    assert status["topups_minor"] == 0
    limits = json.loads(pointsnet(tmp_path, "partners", "limits", prepaid, check=True).stdout)
    assert (limits["float_overdraft_minor"], limits["exposure_limit_minor"]) == (0, None)


def test_digits_are_read_as_before(tmp_path, prepaid):
    topped = json.loads(pointsnet(tmp_path, "clearing", "top-up", prepaid, "--amount", "0120000",
                                  "--bank-reference", "BANK-1", check=True).stdout)
    assert topped["balance_micro"] == 120_000 * 10**6
    limits = json.loads(pointsnet(tmp_path, "partners", "limits", prepaid, "--float-overdraft", "300",
                                  "--exposure-limit", "none", check=True).stdout)
    assert (limits["float_overdraft_minor"], limits["exposure_limit_minor"]) == (300, None)


def test_partners_add_reads_its_exposure_limit_from_digits_and_a_huge_amount_is_one_line(tmp_path):
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    for typed in ("1_000", " +5 "):
        refused = pointsnet(tmp_path, "partners", "add", "Shop", "--exposure-limit", typed)
        assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0, refused.stderr
    assert "Shop" not in pointsnet(tmp_path, "partners", "list", check=True).stdout
    huge = pointsnet(tmp_path, "partners", "add", "Shop", "--float-overdraft", "9" * 4301, "--billing", "prepaid")
    assert huge.returncode == 2 and "Traceback" not in huge.stderr and huge.stderr.strip().count("\n") == 0
    added = json.loads(pointsnet(tmp_path, "partners", "add", "Shop", "--exposure-limit", "1000", check=True).stdout)
    assert added["limits"]["exposure_limit_minor"] == 1000
