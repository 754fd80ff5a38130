"""`pointsnet reconcile` and the dashboard's Verify page and partner-log upload on damaged input.

The check exists to catch damaged or tampered files: a settlement directory whose manifest is not
JSON, whose figures cannot be read, or whose manifest names paths outside the directory gives
findings and the verdict NOT RECONCILED (exit 1), never a traceback or a 500. A partner's log is read
exactly: an amount finer than a micro-unit or not finite is refused naming its line (422 on the
dashboard, one line and a non-zero exit on the command line), and a reference it lists twice is a
break, not a line silently dropped.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
from hypothesis import given, strategies as st

from shared.money import MAX_MICRO, to_micro
from shared.settlement.files import exact
from shared.settlement.reconcile import Finding, PartnerLogError, UnreadableFigure, _micro, check_controls, \
    match_partner_log, read_partner_log, verify_directory
from shared.signing import network_key_id
from tests.cli.inprocess import pointsnet as run_pointsnet
from tests.factories import make_member, make_partner

TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")
CYCLE = date(2026, 11, 20)


@pytest.fixture
def settled(network, clock, database_url):
    """CoffeeCo issues 500, the member spends 200 at BookMart (BookMart nets +190); 2026-11-20 settled."""
    coffee = make_partner(network, "CoffeeCo", **TERMS)
    book = make_partner(network, "BookMart", **TERMS)
    member = make_member(network, coffee, also_linked_to=(book,))
    network.earn(coffee, member, "coffee-1", points=500)
    network.burn(book, member, "book-1", 200)
    clock.advance(days=1)
    network.settle(CYCLE)
    env = {"POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
           "POINTSNET_CLOCK": clock.now().isoformat().replace("+00:00", "Z")}
    return {"coffee": coffee, "book": book, "env": env,
            "directory": network.settings.data_dir / "settlements" / CYCLE.isoformat()}


def cli(settled, *args):
    return run_pointsnet(*args, env=settled["env"])


def keys(network):
    key = network.signing_key
    return {network_key_id(key): key.public_key()}


def verify(network, settled) -> list[Finding]:
    return network.tx(lambda tx: verify_directory(tx, settled["directory"], keys(network)), readonly=True)


def not_reconciled(done) -> bool:
    return done.returncode == 1 and "Traceback" not in done.stderr and "NOT RECONCILED" in done.stderr


def one_line_error(done) -> bool:
    return done.returncode != 0 and "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0


def statement_of(settled, party: str = "book"):
    return settled["directory"] / f"statement-{settled[party]}.csv"


def log_file(tmp_path, *lines: str):
    log = tmp_path / "log.csv"
    log.write_text("reference,kind,points,amount,time\n" + "".join(line + "\n" for line in lines))
    return log


def reconcile_log(settled, log):
    return cli(settled, "reconcile", str(settled["directory"]), "--partner", settled["book"],
               "--partner-log", str(log))


# -- a damaged settlement directory -------------------------------------------------------------------

def test_an_intact_directory_still_reconciles(settled, network):
    assert verify(network, settled) == []
    assert cli(settled, "reconcile", str(settled["directory"])).returncode == 0


def test_a_manifest_that_is_not_json_is_a_finding_and_not_reconciled(settled, network):
    (settled["directory"] / "manifest.json").write_text("{not json")
    findings = verify(network, settled)
    assert [(f.check, f.subject) for f in findings] == [("signature", "manifest.json"), ("manifest", "manifest.json")]
    assert "not JSON" in findings[1].detail
    done = cli(settled, "reconcile", str(settled["directory"]))
    assert not_reconciled(done) and "manifest: manifest.json" in done.stderr, done.stderr[-300:]


@pytest.mark.parametrize("manifest", ["[]", '"text"', "null", "[" * 100_000, b"\xff\xfe{".decode("latin-1")],
                         ids=["list", "string", "null", "deeply-nested", "not-utf-8"])
def test_a_manifest_that_is_no_json_object_is_a_finding(settled, network, manifest):
    (settled["directory"] / "manifest.json").write_text(manifest, encoding="latin-1")
    findings = verify(network, settled)
    assert ("manifest", "manifest.json") in [(f.check, f.subject) for f in findings]
    assert {f.check for f in findings} <= {"signature", "manifest"}  # nothing to recompute against


def test_a_manifest_without_its_fields_gives_findings_and_no_recomputation(settled, network):
    (settled["directory"] / "manifest.json").write_text(json.dumps({"files": "all", "cycle_date": 20261120,
                                                                    "format_version": True}))
    findings = verify(network, settled)
    details = [f.detail for f in findings if f.check == "manifest"]
    assert any("files" in d for d in details) and any("cycle_date" in d for d in details), details
    assert any("payment_date" in d for d in details) and any("format_version" in d for d in details), details
    assert "recomputation" not in {f.check for f in findings}


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "2030-01-01"])
def test_a_manifest_of_a_cycle_out_of_range_is_not_reconciled(settled, network, day):
    path = settled["directory"] / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["cycle_date"] = day
    path.write_text(json.dumps(manifest))
    findings = verify(network, settled)
    assert findings and ("signature", "manifest.json") in [(f.check, f.subject) for f in findings]
    assert not_reconciled(cli(settled, "reconcile", str(settled["directory"])))


def test_a_statement_with_a_malformed_amount_names_the_file_and_record(settled, network):
    statement = statement_of(settled)
    statement.write_text(statement.read_text().replace("200.000000", "2OO.000000", 1))
    line = 1 + next(n for n, text in enumerate(statement.read_text().splitlines()) if "2OO" in text)
    findings = [f for f in verify(network, settled) if f.check == "control_totals"]
    assert [f.subject for f in findings] == [statement.name]
    assert f"line {line} (D record)" in findings[0].detail and "2OO.000000" in findings[0].detail, findings
    done = cli(settled, "reconcile", str(settled["directory"]))
    assert not_reconciled(done) and "control_totals" in done.stderr, done.stderr[-300:]
    assert "recomputation" in done.stderr  # the manifest is intact: the recomputation still runs


def test_a_trailer_without_its_count_is_not_reconciled(settled, network):
    bilateral = settled["directory"] / "bilateral.csv"
    lines = bilateral.read_text().splitlines()
    lines[-1] = "T,2026-11-20,,,,,,,,"
    bilateral.write_text("\n".join(lines) + "\n")
    findings = [f for f in verify(network, settled) if f.check == "control_totals"]
    assert {f.subject for f in findings} == {"bilateral.csv"}
    assert f"line {len(lines)} (T record): record_count is empty" in [f.detail for f in findings], findings
    assert not_reconciled(cli(settled, "reconcile", str(settled["directory"])))


def test_a_figure_with_more_places_than_the_format_allows_is_a_finding():
    content = (b"record_type,cycle_date,partner_id,points,amount,amount_minor,record_count,control_points,"
               b"control_amount\n"
               b"D,2026-11-20,p,200,190.0000001,,,,\n"
               b"S,2026-11-20,p,200,190.000000,190,,,\n"
               b"N,2026-11-20,p,,,190,,,\n"
               b"T,2026-11-20,p,,,,4,200,190.000000\n")
    findings = check_controls("statement-p.csv", content)
    assert len(findings) == 1 and findings[0].check == "control_totals" and "line 2" in findings[0].detail
    assert "more than 6 decimal places" in findings[0].detail
    exact = content.replace(b"190.0000001", b"190.000000")
    assert check_controls("statement-p.csv", exact) == []


@given(st.integers(min_value=-MAX_MICRO, max_value=MAX_MICRO), st.integers(min_value=1, max_value=9))
def test_an_amount_is_read_exactly_as_to_micro_reads_it(micro, seventh):
    text = exact(micro)  # six places, as the files write it
    assert _micro(text, "amount") == to_micro(text) == micro
    assert _micro(text.rstrip("0").rstrip(".") or "0", "amount") == micro
    with pytest.raises(UnreadableFigure, match="more than 6 decimal places"):
        _micro(f"{text}{seventh}", "amount")


@pytest.mark.parametrize("figure", ["NaN", "Infinity", "-inf", "1e999999", "9" * 30, "1_0", " 5", "+5", "٣"])
def test_no_figure_of_a_settlement_file_crashes_the_check(figure):
    content = ("record_type,cycle_date,payer,payee,line_kind,points,amount,amount_minor,record_count,"
               "control_amount_minor\n"
               f"D,2026-11-20,a,b,redemption,5,5.000000,{figure},,\n"
               "T,2026-11-20,,,,,,,3,5\n").encode()
    findings = check_controls("bilateral.csv", content)
    assert [(f.check, f.subject) for f in findings] == [("control_totals", "bilateral.csv")]
    assert "line 2" in findings[0].detail


@pytest.mark.parametrize("content", [b"\xff\xfe not utf-8", b"record_type\n\"unclosed", b"", b"a,b\n1,2\n",
                                     b"record_type,cycle_date\nT\n"])
def test_a_file_that_is_no_settlement_csv_is_a_finding(content):
    findings = check_controls("network-summary.csv", content)
    assert findings and {(f.check, f.subject) for f in findings} == {("control_totals", "network-summary.csv")}


def test_a_manifest_without_its_checkpoint_on_a_ledger_without_one_is_a_finding_not_a_traceback(network, tmp_path,
                                                                                                  database_url, clock):
    """A version 2 or 3 manifest without `checkpoint`, of a cycle no checkpoint of the ledger covers (a network
    that has sealed nothing yet, a cycle not sealed yet), was recomputed with none: a ValueError's traceback,
    exit 1, until 2026-12-07."""
    directory = tmp_path / "2026-11-20"
    directory.mkdir()
    (directory / "manifest.json").write_text(json.dumps({"format_version": 3, "cycle_date": "2026-11-20",
                                                         "payment_date": "2026-11-23", "files": []}))
    (directory / "manifest.json.sig").write_text("{}")
    findings = network.tx(lambda tx: verify_directory(tx, directory, keys(network)), readonly=True)
    assert ("checkpoint", "manifest.json") in [(f.check, f.subject) for f in findings], findings
    assert "recomputation" not in {f.check for f in findings}
    env = {"POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
           "POINTSNET_CLOCK": clock.now().isoformat().replace("+00:00", "Z")}
    assert not_reconciled(run_pointsnet("reconcile", str(directory), env=env))


def test_a_signature_file_that_is_not_a_signature_is_a_finding(settled, network):
    (settled["directory"] / "manifest.json.sig").write_text("[1, 2]")
    assert [(f.check, f.subject) for f in verify(network, settled)] == [("signature", "manifest.json")]


def test_a_checkpoint_that_is_not_a_note_is_a_finding(settled, network):
    path = settled["directory"] / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["checkpoint"]["note"] = 42
    path.write_text(json.dumps(manifest))
    assert ("checkpoint", "manifest.json") in [(f.check, f.subject) for f in verify(network, settled)]


def test_a_checkpoint_note_under_an_origin_the_network_never_signed_under_is_a_finding(settled, network):
    """The manifest's checkpoint note was checked under the origin written in it, so a note the network's
    key signed for another log (a staging network sharing the key) passed, once copied into the ledger's
    checkpoints and the manifest (re-signed with that key). As `pointsnet verify`, reconcile takes only
    an origin the network itself signed under (network_origins): another is a finding."""
    import base64

    from sqlalchemy import text

    from shared.settlement.runs import sign_manifest
    from shared.transparency.note import note_body, sign_note

    name = "staging.points.example.com/ledger"
    path = settled["directory"] / "manifest.json"
    manifest = json.loads(path.read_text())
    genuine = manifest["checkpoint"]["note"]
    assert not [f for f in verify(network, settled) if f.check == "checkpoint"]
    note = sign_note(note_body(name, manifest["checkpoint"]["tree_size"],
                               base64.b64decode(manifest["checkpoint"]["root_hash"]),
                               network.clock.now()), name, network.signing_key)
    network.tx(lambda tx: tx.session.execute(text("UPDATE checkpoints SET note = :new WHERE note = :old"),
                                             {"new": note, "old": genuine}))
    manifest["checkpoint"]["note"] = note
    forged = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    path.write_bytes(forged)
    (settled["directory"] / "manifest.json.sig").write_bytes(sign_manifest(forged, network.signing_key))
    findings = verify(network, settled)
    # re-signed, it is not the manifest the cycle's run wrote either (as `pointsnet verify` names it)
    assert [(f.check, f.subject) for f in findings] == [("manifest", "manifest.json"),
                                                        ("checkpoint", "manifest.json")], findings
    assert "not the one this cycle's settlement run wrote" in findings[0].detail
    assert name in findings[1].detail and "never signed under" in findings[1].detail
    done = cli(settled, "reconcile", str(settled["directory"]))
    assert not_reconciled(done), done.stderr[-300:]


# -- a forged manifest names no file outside the directory ------------------------------------------

@pytest.mark.parametrize("name", ["../outside.csv", "..", ".", "", "sub/bilateral.csv", "..\\outside.csv",
                                  "/etc/passwd", "nul\x00.csv", 7, None])
def test_a_manifest_naming_anything_but_a_plain_file_name_is_a_finding(settled, network, tmp_path, name):
    outside = settled["directory"].parent / "outside.csv"
    outside.write_text("secret\n")
    path = settled["directory"] / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"].append({"name": name, "sha256": "0" * 64, "records": 1})
    path.write_text(json.dumps(manifest))
    findings = verify(network, settled)
    bad = [f for f in findings if f.check == "manifest"]
    assert len(bad) == 1 and "plain file name" in bad[0].detail, findings
    assert not [f for f in findings if f.check in ("digest", "control_totals")], findings
    done = cli(settled, "reconcile", str(settled["directory"]))
    assert not_reconciled(done), done.stderr[-300:]


def test_a_file_listed_twice_in_the_manifest_is_a_finding(settled, network):
    path = settled["directory"] / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"].append(dict(manifest["files"][0], sha256="0" * 64))
    path.write_text(json.dumps(manifest))
    findings = verify(network, settled)
    assert ("manifest", manifest["files"][0]["name"]) in [(f.check, f.subject) for f in findings]
    assert any("twice" in f.detail for f in findings)


def test_a_listed_name_that_is_a_directory_is_a_finding(settled, network):
    path = settled["directory"] / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"].append({"name": "folder", "sha256": "0" * 64, "records": 1})
    path.write_text(json.dumps(manifest))
    (settled["directory"] / "folder").mkdir()
    assert ("digest", "folder") in [(f.check, f.subject) for f in verify(network, settled)]


def test_a_listed_name_longer_than_the_file_system_allows_is_a_finding(settled, network):
    """A plain name of 300 characters cannot even be looked up (ENAMETOOLONG): a finding, not a crash."""
    name = "statement-" + "x" * 300 + ".csv"
    path = settled["directory"] / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"].append({"name": name, "sha256": "0" * 64, "records": 1})
    path.write_text(json.dumps(manifest))
    assert ("digest", name) in [(f.check, f.subject) for f in verify(network, settled)]
    done = cli(settled, "reconcile", str(settled["directory"]))
    assert not_reconciled(done) and name in done.stderr.replace("\n", ""), done.stderr[-400:]


@pytest.mark.parametrize("mistake", ["directory", "partner"])
def test_a_directory_or_partner_longer_than_the_file_system_allows_is_one_line(settled, tmp_path, mistake):
    """As a short wrong value: `DIR is not a settlement directory`, `no statement for ID in DIR`."""
    log = log_file(tmp_path, "book-1,burn,200,190,2026-11-20T02:00:00Z")
    if mistake == "directory":
        done = cli(settled, "reconcile", str(tmp_path / ("d" * 300)))
        says = "is not a settlement directory"
    else:
        done = cli(settled, "reconcile", str(settled["directory"]), "--partner", "p" * 300,
                   "--partner-log", str(log))
        says = "no statement for " + "p" * 300
    assert one_line_error(done) and says in done.stderr, done.stderr[-400:]


# -- the partner's log is read exactly ---------------------------------------------------------------

def test_a_partner_log_amount_finer_than_a_micro_unit_is_refused_naming_its_line(settled, tmp_path):
    done = reconcile_log(settled, log_file(tmp_path, "book-1,burn,200,190.0000009,2026-11-20T02:00:00Z"))
    assert one_line_error(done) and "partner log line 2" in done.stderr, done.stderr
    assert "no breaks" not in done.stdout


@pytest.mark.parametrize("amount", ["Infinity", "NaN", "-inf", "sNaN", "1e999999", "1" + "0" * 30])
def test_a_partner_log_amount_that_is_not_finite_is_refused_naming_its_line(settled, tmp_path, amount):
    done = reconcile_log(settled, log_file(tmp_path, "book-1,burn,200,190,2026-11-20T02:00:00Z",
                                           f"book-2,burn,200,{amount},2026-11-20T02:00:00Z"))
    assert one_line_error(done) and "partner log line 3" in done.stderr, done.stderr


@pytest.mark.parametrize("line", ["book-1", "book-1,burn,2_00,190,x", "book-1,burn,2e2,190,x"])
def test_a_partner_log_line_without_its_figures_is_refused_naming_its_line(settled, tmp_path, line):
    done = reconcile_log(settled, log_file(tmp_path, line))
    assert one_line_error(done) and "partner log line 2" in done.stderr, done.stderr
    assert done.returncode == 2  # the log given is the operator's to fix: not a break, not the system


@pytest.mark.parametrize("line", ["book-1,burn,200", "book-1,burn,200,190"])
def test_a_partner_log_line_with_fewer_fields_than_the_header_is_refused_naming_its_line(settled, tmp_path, line):
    """A line cut short (an export truncated after `points`) is not read as an amount of 0."""
    done = reconcile_log(settled, log_file(tmp_path, "book-2,burn,5,0,2026-11-20T02:00:00Z", line))
    assert one_line_error(done) and "partner log line 3: too few fields" in done.stderr, done.stderr
    assert "no breaks" not in done.stdout and "amount_mismatch" not in done.stdout


@pytest.mark.parametrize("line", ["book-1,burn,200,1,234.50,2026-11-20T02:00:00Z",
                                  "book-1,burn,200,190,2026-11-20T02:00:00Z,"],
                         ids=["unquoted-thousands-separator", "trailing-empty-field"])
def test_a_partner_log_line_with_more_fields_than_the_header_is_refused_naming_its_line(settled, tmp_path, line):
    """An unquoted `1,234.50` is two fields: the line is refused, never read as an amount of 1."""
    done = reconcile_log(settled, log_file(tmp_path, "book-2,burn,5,0,2026-11-20T02:00:00Z", line))
    assert one_line_error(done) and "partner log line 3: too many fields; columns are " \
        "reference,kind,points,amount,time" in done.stderr, done.stderr
    assert "no breaks" not in done.stdout and "amount_mismatch" not in done.stdout


def test_a_partner_log_without_the_time_column_is_read_and_refuses_extra_fields(settled, tmp_path):
    """`time` is optional: a log of four columns matches; a fifth field on a line is one too many."""
    log = tmp_path / "log.csv"
    log.write_text("reference,kind,points,amount\nbook-1,burn,200,190\n")
    done = reconcile_log(settled, log)
    assert done.returncode == 0 and "no breaks" in done.stdout, (done.stdout, done.stderr)
    log.write_text("reference,kind,points,amount\nbook-1,burn,200,1,234.50\n")
    done = reconcile_log(settled, log)
    assert one_line_error(done) and "partner log line 2: too many fields" in done.stderr, done.stderr


def test_read_partner_log_refuses_a_line_longer_than_the_header():
    with pytest.raises(PartnerLogError, match=r"^partner log line 2: too many fields; columns are "):
        read_partner_log("reference,kind,points,amount,time\nbook-1,burn,200,1,234.50,2026-11-20T02:00:00Z\n")
    with pytest.raises(PartnerLogError, match=r"^partner log line 2: amount: '1,234.50' is not a decimal"):
        read_partner_log('reference,kind,points,amount,time\r\nbook-1,burn,200,"1,234.50",x\r\n')  # quoted: one field
    assert read_partner_log("reference,kind,points,amount,time\r\n"
                            "book-1,burn,200,1234.50,2026-11-20T02:00:00Z\r\n") == \
        {"book-1": [{"line": 2, "kind": "burn", "points": 200, "amount": to_micro("1234.50")}]}
    assert read_partner_log("reference,kind,points,amount\nbook-1,burn,200,1234.50\n") == \
        {"book-1": [{"line": 2, "kind": "burn", "points": 200, "amount": to_micro("1234.50")}]}


def test_read_partner_log_refuses_an_open_quote_and_an_empty_file():
    """A quote left open took the lines after it into one field; an empty file (no header) was read as a
    log of nothing, every statement line then "missing on the partner" (until 2026-12-07)."""
    with pytest.raises(PartnerLogError, match=r"^partner log line 2: unexpected end of data"):
        read_partner_log('reference,kind,points,amount,time\nbook-1,burn,200,190,"2026-11-20T02:00:00Z\n'
                         'book-2,burn,10,9,2026-11-20T02:00:00Z\n')
    with pytest.raises(PartnerLogError, match=r"^partner log line 1: the file is empty; columns are "):
        read_partner_log("")


def test_a_partner_log_amount_present_but_empty_still_counts_as_zero(settled, tmp_path):
    done = reconcile_log(settled, log_file(tmp_path, "book-1,burn,200,,2026-11-20T02:00:00Z"))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-400:]
    assert "amount_mismatch" in done.stdout, done.stdout


def test_a_partner_log_line_number_counts_blank_lines(settled, tmp_path):
    done = reconcile_log(settled, log_file(tmp_path, "book-1,burn,200,190,2026-11-20T02:00:00Z", "",
                                           "book-2,burn,200,NaN,2026-11-20T02:00:00Z"))
    assert one_line_error(done) and "partner log line 4" in done.stderr, done.stderr


def test_the_partner_log_amounts_that_match_still_match(settled, tmp_path):
    for amount in ("190", "190.000000", "190.0", "+190.00"):
        done = reconcile_log(settled, log_file(tmp_path, f"book-1,burn,200,{amount},2026-11-20T02:00:00Z"))
        assert done.returncode == 0 and "no breaks" in done.stdout, (amount, done.stdout, done.stderr)


def test_a_reference_twice_in_the_partner_log_is_a_break_naming_both_lines(settled, tmp_path):
    log = log_file(tmp_path, "book-1,burn,200,100,2026-11-20T02:00:00Z", "book-1,burn,200,190,2026-11-20T02:00:00Z")
    report = tmp_path / "breaks.csv"
    done = cli(settled, "reconcile", str(settled["directory"]), "--partner", settled["book"],
               "--partner-log", str(log), "--breaks-csv", str(report))
    assert done.returncode == 1 and "no breaks" not in done.stdout
    rows = list(csv.DictReader(io.StringIO(report.read_text())))
    assert [(r["reference"], r["break"]) for r in rows] == [("book-1", "duplicate_on_partner")]
    assert "line 2" in rows[0]["theirs"] and "100.000000" in rows[0]["theirs"]
    assert "line 3" in rows[0]["theirs"] and "190.000000" in rows[0]["theirs"]
    assert "190.000000" in rows[0]["ours"]


def test_a_reference_twice_in_the_log_and_not_on_the_statement_is_a_duplicate_break(settled, network):
    statement = statement_of(settled).read_bytes()
    log = ("reference,kind,points,amount,time\nbook-1,burn,200,190,\nbook-9,earn,1,0,\nbook-9,earn,1,0,\n")
    breaks = network.tx(lambda tx: match_partner_log(tx, statement, settled["book"], log), readonly=True)
    assert [(b.reference, b.kind, b.ours) for b in breaks] == [("book-9", "duplicate_on_partner", "")]


# -- what the files and the log say is printed as text, never read as Rich markup ----------------------

def test_a_manifest_value_that_looks_like_markup_is_printed_as_it_is(settled, network):
    path = settled["directory"] / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["format_version"] = "[/b]"
    path.write_text(json.dumps(manifest))
    done = cli(settled, "reconcile", str(settled["directory"]))
    assert not_reconciled(done) and "[/b]" in done.stderr, done.stderr[-400:]


def test_a_partner_log_reference_that_looks_like_markup_is_printed_as_it_is(settled, tmp_path):
    done = reconcile_log(settled, log_file(tmp_path, "book-1,burn,200,190,2026-11-20T02:00:00Z",
                                           "[/]x[red],burn,5,1,2026-11-20T02:00:00Z"))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-400:]
    assert "[/]x[red]" in done.stdout.replace("\n", ""), done.stdout


def test_a_refusal_naming_markup_is_one_line_printed_as_it_is(settled, tmp_path):
    done = reconcile_log(settled, log_file(tmp_path, "book-1,burn,[/b],190,x"))
    assert one_line_error(done) and "[/b]" in done.stderr, done.stderr
