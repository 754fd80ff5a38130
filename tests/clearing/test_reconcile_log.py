"""Partner-log matching must not say "no breaks" for a log that differs from the ledger."""

from __future__ import annotations

from datetime import date

import pytest

from tests.cli.inprocess import pointsnet as run_pointsnet
from tests.factories import make_member, make_partner

TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")
CYCLE = date(2026, 11, 20)


@pytest.fixture
def settled(network, clock, database_url):
    """CoffeeCo issues 500 and redeems 50 of its own points (no money: payer = payee never happens);
    BookMart redeems 200 of them. 2026-11-20 settled."""
    coffee = make_partner(network, "CoffeeCo", **TERMS)
    book = make_partner(network, "BookMart", **TERMS)
    member = make_member(network, coffee, also_linked_to=(book,))
    network.earn(coffee, member, "coffee-1", points=500)
    network.burn(coffee, member, "coffee-own", 50)
    network.burn(book, member, "book-1", 200)
    clock.advance(days=1)
    network.settle(CYCLE)
    env = {"POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
           "POINTSNET_CLOCK": clock.now().isoformat().replace("+00:00", "Z")}
    return {"coffee": coffee, "book": book, "env": env,
            "directory": network.settings.data_dir / "settlements" / CYCLE.isoformat()}


def reconcile(settled, tmp_path, partner, *lines):
    log = tmp_path / "log.csv"
    log.write_text("reference,kind,points,amount,time\n" + "".join(line + "\n" for line in lines))
    return run_pointsnet("reconcile", str(settled["directory"]), "--partner", settled[partner],
                         "--partner-log", str(log), env=settled["env"])


def test_the_true_log_matches(settled, tmp_path):
    done = reconcile(settled, tmp_path, "coffee", "coffee-1,earn,500,-50,2026-11-20T02:00:00Z",
                     "coffee-own,burn,50,0,2026-11-20T02:05:00Z")
    assert done.returncode == 0 and "no breaks" in done.stdout, (done.stdout, done.stderr)


def test_a_no_money_entry_logged_with_other_points_and_kind_is_a_break(settled, tmp_path):
    """The ledger's coffee-own is a burn of 50 points; the log says an earn of 99999. The matcher
    compares points and kind for every reference on the statement, but a reference whose entry moves
    no money is skipped without looking at them: "no breaks"."""
    done = reconcile(settled, tmp_path, "coffee", "coffee-1,earn,500,-50,2026-11-20T02:00:00Z",
                     "coffee-own,earn,99999,0,2026-11-20T02:05:00Z")
    assert "no breaks" not in done.stdout and done.returncode == 1, done.stdout


def test_a_tampered_statement_is_not_matched_as_no_breaks(settled, tmp_path):
    """BookMart's statement edited (190 -> 999 on book-1's redemption line and its totals): the partner's
    log that agrees with the edited file, not with the ledger, is reported as matching."""
    path = settled["directory"] / f"statement-{settled['book']}.csv"
    text = path.read_text()
    assert ",200.000000," in text
    path.write_text(text.replace(",200.000000,", ",1009.000000,"))
    done = reconcile(settled, tmp_path, "book", "book-1,burn,200,999,2026-11-20T02:10:00Z")
    assert "no breaks" not in done.stdout, done.stdout


# -- an entry that moves no money is matched on its kind and points ------------------------------------

AT = "2026-11-20T02:00:00Z"  # a log line's time (RFC 3339)


def breaks_of(done) -> list[tuple[str, str]]:
    return [tuple(row.split(",")[:2]) for row in done.breaks.splitlines()[1:]]


def reconcile_with_report(settled, tmp_path, partner, *lines):
    log = tmp_path / "log.csv"
    log.write_text("reference,kind,points,amount,time\n" + "".join(line + "\n" for line in lines))
    report = tmp_path / "breaks.csv"
    done = run_pointsnet("reconcile", str(settled["directory"]), "--partner", settled[partner],
                         "--partner-log", str(log), "--breaks-csv", str(report), env=settled["env"])
    done.breaks = report.read_text() if report.exists() else ""
    return done


@pytest.mark.parametrize("line, expected", [
    (f"coffee-own,earn,50,0,{AT}", [("coffee-own", "kind_mismatch")]),
    (f"coffee-own,burn,51,0,{AT}", [("coffee-own", "points_mismatch")]),
    (f"coffee-own,earn,99999,0,{AT}", [("coffee-own", "kind_mismatch"), ("coffee-own", "points_mismatch")]),
])
def test_a_no_money_entry_is_compared_on_kind_and_points(settled, tmp_path, line, expected):
    done = reconcile_with_report(settled, tmp_path, "coffee", f"coffee-1,earn,500,-50,{AT}", line)
    assert done.returncode == 1 and breaks_of(done) == expected, (done.stdout, done.stderr, done.breaks)


def test_a_no_money_entry_logged_with_money_still_says_it_moves_none(settled, tmp_path):
    done = reconcile_with_report(settled, tmp_path, "coffee", f"coffee-1,earn,500,-50,{AT}",
                                 f"coffee-own,burn,50,5,{AT}")
    assert done.returncode == 1 and breaks_of(done) == [("coffee-own", "missing_on_network")], done.breaks
    assert "moves no money" in done.breaks


# -- the statement is matched only when it is the one the network signed --------------------------------

def one_line_refusal(done) -> bool:
    return done.returncode != 0 and "Traceback" not in done.stderr \
        and done.stderr.strip().count("\n") == 0 and "no breaks" not in done.stdout


def test_a_tampered_statement_is_refused_in_one_line(settled, tmp_path):
    path = settled["directory"] / f"statement-{settled['book']}.csv"
    path.write_text(path.read_text().replace(",200.000000,", ",1009.000000,"))
    done = reconcile(settled, tmp_path, "book", "book-1,burn,200,999,2026-11-20T02:10:00Z")
    assert one_line_refusal(done), (done.returncode, done.stdout, done.stderr)
    assert done.returncode == 1  # a finding about the network's files, as NOT RECONCILED is
    assert f"statement-{settled['book']}.csv" in done.stderr and "SHA-256" in done.stderr, done.stderr


def test_a_statement_and_manifest_edited_together_are_refused_by_the_signature(settled, tmp_path):
    import hashlib
    import json

    path = settled["directory"] / f"statement-{settled['book']}.csv"
    path.write_text(path.read_text().replace(",200.000000,", ",1009.000000,"))
    manifest_path = settled["directory"] / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["files"]:
        if entry["name"] == path.name:
            entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    done = reconcile(settled, tmp_path, "book", "book-1,burn,200,999,2026-11-20T02:10:00Z")
    assert one_line_refusal(done) and "signature" in done.stderr, (done.returncode, done.stdout, done.stderr)


def test_a_statement_the_manifest_does_not_list_is_refused(settled, tmp_path):
    import json

    manifest_path = settled["directory"] / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"] = [f for f in manifest["files"] if f["name"] != f"statement-{settled['book']}.csv"]
    manifest_path.write_text(json.dumps(manifest))  # and the signature no longer verifies either
    done = reconcile(settled, tmp_path, "book", "book-1,burn,200,190,2026-11-20T02:10:00Z")
    assert one_line_refusal(done), (done.returncode, done.stdout, done.stderr)


def test_a_missing_signature_is_refused(settled, tmp_path):
    (settled["directory"] / "manifest.json.sig").unlink()
    done = reconcile(settled, tmp_path, "book", "book-1,burn,200,190,2026-11-20T02:10:00Z")
    assert one_line_refusal(done) and "manifest.json.sig" in done.stderr, (done.returncode, done.stderr)


# -- a log saved with a byte-order mark (as Excel writes UTF-8 CSV) --------------------------------------

def test_a_log_with_a_byte_order_mark_is_read(settled, tmp_path):
    log = tmp_path / "excel.csv"
    log.write_bytes(b"\xef\xbb\xbfreference,kind,points,amount,time\r\n"
                    b"book-1,burn,200,190,2026-11-20T02:10:00Z\r\n")
    done = run_pointsnet("reconcile", str(settled["directory"]), "--partner", settled["book"],
                         "--partner-log", str(log), env=settled["env"])
    assert done.returncode == 0 and "no breaks" in done.stdout, (done.stdout, done.stderr)
