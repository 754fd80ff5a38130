"""The pointsnet command as operators run it, with its data directory: in this process through
``services.cli.main`` (tests/cli/inprocess.py), and as a real process where the process matters
(``serve --demo`` here, tests/cli/test_process.py)."""

import json
import os
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from shared.config import get_settings
from shared.network import Network
from shared.ports import free_port
from shared.partners.contracts import ContractTerms
from tests.cli.inprocess import environment, pointsnet as run_pointsnet
from tests.conftest import PG_URL


def pointsnet(tmp_path, *args, check=False, env=None):
    """``pointsnet ARGS`` on the embedded database of ``tmp_path/data`` (``env``: more variables)."""
    done = run_pointsnet(*args, env={"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_DATABASE_URL": None,
                                     **(env or {})})
    if check and done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)
    return done


def test_partner_registration_keys_and_one_line_errors(tmp_path):
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    keygen = json.loads(pointsnet(tmp_path, "partners", "keygen", "--out", str(tmp_path / "shop"), check=True).stdout)
    added = pointsnet(tmp_path, "partners", "add", "Shop", "--public-key", keygen["public_key"],
                      "--billing", "prepaid", "--issuance-fee", "0.05", check=True)
    created = json.loads(added.stdout)
    assert created["partner_id"].startswith("ptn_") and created["key_id"].startswith("key_")
    bad = pointsnet(tmp_path, "partners", "add", "Other", "--billing", "weekly")
    assert bad.returncode != 0 and bad.stderr.strip().count("\n") == 0 and "billing" in bad.stderr
    precise = pointsnet(tmp_path, "partners", "add", "Other", "--issuance-fee", "0.0000001")
    assert precise.returncode != 0 and "6 decimal places" in precise.stderr
    missing = pointsnet(tmp_path, "partners", "add", "Third", "--public-key", str(tmp_path / "nope.pem"))
    assert missing.returncode != 0 and "cannot read" in missing.stderr
    negative = pointsnet(tmp_path, "partners", "add", "Fourth", "--point-value", "-1")  # not the CHECK constraint's
    assert one_line_error(negative) and "point_value: -1 must be 0 or more" in negative.stderr, negative.stderr
    unknown = pointsnet(tmp_path, "partners", "keys", "list", "ptn_unknown")
    assert one_line_error(unknown) and unknown.stdout == "" and "no partner ptn_unknown" in unknown.stderr
    second = pointsnet(tmp_path, "partners", "keygen", "--out", str(tmp_path / "shop2"), check=True)
    rotated = pointsnet(tmp_path, "partners", "keys", "add", created["partner_id"], "--public-key",
                        json.loads(second.stdout)["public_key"], check=True)
    assert json.loads(rotated.stdout)["key_id"] != created["key_id"]
    revoked = pointsnet(tmp_path, "partners", "keys", "revoke", created["key_id"], check=True)
    assert json.loads(revoked.stdout)["status"] == "revoked"


def one_line_error(done) -> bool:
    return done.returncode != 0 and "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0


def test_partner_call_with_a_missing_or_bad_key_or_body_file_is_a_one_line_error(tmp_path):
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    call = ("partner-call", "GET", "/v1/reports", "--key-id", "key_x", "--key-file")
    missing = pointsnet(tmp_path, *call, str(tmp_path / "nope.pem"))
    assert one_line_error(missing) and "cannot read" in missing.stderr, missing.stderr
    (tmp_path / "bad.pem").write_text("not a key\n")
    bad = pointsnet(tmp_path, *call, str(tmp_path / "bad.pem"))
    assert one_line_error(bad) and "not an unencrypted Ed25519 private key" in bad.stderr, bad.stderr
    keygen = json.loads(pointsnet(tmp_path, "partners", "keygen", "--out", str(tmp_path / "p"), check=True).stdout)
    no_body = pointsnet(tmp_path, *call, keygen["private_key"], "--json", f"@{tmp_path / 'nope.json'}")
    assert one_line_error(no_body) and "cannot read" in no_body.stderr, no_body.stderr


@pytest.mark.parametrize("variable, value", [("POINTSNET_TIMEZONE", "Mars/Olympus"), ("POINTSNET_TIERS", "not json")])
def test_a_wrong_configuration_value_is_one_line_and_exit_2(tmp_path, variable, value):
    """A time zone zoneinfo does not know (a KeyError, not a ValueError) and a value pydantic-settings
    cannot decode (a SettingsError) are configuration errors like any other (docs/operations.md)."""
    done = pointsnet(tmp_path, "db", "upgrade", env={variable: value})
    assert done.returncode == 2 and one_line_error(done), done.stderr[-400:]
    assert done.stderr.startswith(f"configuration error: {variable}: ") and value not in done.stderr


@pytest.mark.parametrize("variable, value", [
    ("POINTSNET_SIGNING_KEY_FILE", "/nonexistent/network-signing-key.pem"),
    ("POINTSNET_PII_KEYS_FILE", "/nonexistent/pii-keys.json"),
    ("POINTSNET_PII_KEYS", "{not json"),
], ids=["signing-key-file-missing", "pii-keys-file-missing", "pii-keys-not-json"])
def test_a_key_configuration_mistake_is_one_line_and_exit_2(tmp_path, monkeypatch, variable, value):
    """A configured key file that does not exist and a keyring that is not JSON are configuration
    errors like any other (docs/operations.md): one line naming the variable, never the key."""
    done = pointsnet(tmp_path, "keys", "init", env={variable: value})
    assert done.returncode == 2 and one_line_error(done), done.stderr[-600:]
    assert done.stderr.startswith(f"configuration error: {variable}: "), done.stderr
    assert not (tmp_path / "data" / "keys" / "pii-keys.json").exists()  # no keyring generated in its stead
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    from services.cli import serving

    monkeypatch.setattr(serving, "_job_runner", lambda *_: sys.exit("the worker started with the keys unread"))
    worker = pointsnet(tmp_path, "worker", env={variable: value})  # at its start, not in its first job
    assert worker.returncode == 2 and worker.stderr.startswith(f"configuration error: {variable}: "), worker.stderr


def test_a_key_configuration_mistake_in_a_file_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "pii-keys.json").write_text('{"active": "k1", "keys": {}}')
    (tmp_path / "signing.pem").write_text("not a key\n")
    keyring = pointsnet(tmp_path, "keys", "init", env={"POINTSNET_PII_KEYS_FILE": str(tmp_path / "pii-keys.json")})
    assert keyring.returncode == 2 and one_line_error(keyring), keyring.stderr[-600:]
    assert keyring.stderr.startswith("configuration error: POINTSNET_PII_KEYS_FILE: "), keyring.stderr
    assert "not in the keyring" in keyring.stderr
    signing = pointsnet(tmp_path, "keys", "init", env={"POINTSNET_SIGNING_KEY_FILE": str(tmp_path / "signing.pem")})
    assert signing.returncode == 2 and one_line_error(signing), signing.stderr[-600:]
    assert signing.stderr.startswith("configuration error: POINTSNET_SIGNING_KEY_FILE: "), signing.stderr


@pytest.mark.parametrize("options, address", [((), "127.0.0.1"), (("--metrics-host", "0.0.0.0"), "0.0.0.0")])
def test_the_worker_serves_metrics_on_the_address_asked(tmp_path, monkeypatch, options, address):
    """By default only this machine reaches a worker's metrics; in a container Prometheus is
    another machine (deploy/compose.yaml: --metrics-host 0.0.0.0)."""
    import prometheus_client

    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    bound = {}

    def start_http_server(port, addr="0.0.0.0", **_):
        bound.update(port=port, addr=addr)
        raise KeyboardInterrupt  # stop the worker before its job runner starts

    monkeypatch.setattr(prometheus_client, "start_http_server", start_http_server)
    pointsnet(tmp_path, "worker", "--metrics-port", "9400", *options)
    assert bound == {"port": 9400, "addr": address}


@pytest.mark.skipif(bool(PG_URL), reason="drives the embedded SQLite database")
def test_verify_names_the_offending_member(tmp_path):
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    with environment({"POINTSNET_DATA_DIR": str(tmp_path / "data")}):
        n = Network(get_settings())
        p = n.create_partner('Shop')['partner_id']
        member = n.enrol(p, phone='+8613812345678')['member_id']
        n.earn(p, member, 'e1', points=50)
        n.close()
    assert pointsnet(tmp_path, "verify").returncode == 0
    with sqlite3.connect(tmp_path / "data" / "pointsnet.db") as db:
        db.execute("UPDATE members SET available = available + 7 WHERE id = ?", (member,))
    broken = pointsnet(tmp_path, "verify")
    assert broken.returncode == 1 and member in broken.stderr
    report = json.loads(pointsnet(tmp_path, "verify", "--json").stdout)
    assert not report["ok"] and {o["check"] for o in report["offences"]} >= {"member_available_matches_postings"}


def test_repair_totals_sets_a_drifted_float_to_its_lines(tmp_path):
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    with environment({"POINTSNET_DATA_DIR": str(tmp_path / "data")}):
        n = Network(get_settings())
        p = n.create_partner("Prepaid", ContractTerms("prepaid", "1", "0", "0", "0"))["partner_id"]
        member = n.enrol(p, phone="+8613812345678")["member_id"]
        n.close()
    assert pointsnet(tmp_path, "partners", "limits", p, "--float-overdraft", "5").returncode == 0
    with environment({"POINTSNET_DATA_DIR": str(tmp_path / "data")}):
        n = Network(get_settings())
        n.earn(p, member, "e1", points=3)
        n.close()
    nothing = pointsnet(tmp_path, "repair", "totals")
    assert nothing.returncode == 0 and "nothing changed" in nothing.stdout
    with sqlite3.connect(tmp_path / "data" / "pointsnet.db") as db:
        db.execute("UPDATE partner_limits SET float_drawn_micro = 7 WHERE partner_id = ?", (p,))
    assert pointsnet(tmp_path, "verify").returncode == 1
    repaired = pointsnet(tmp_path, "repair", "totals", "--json")
    assert repaired.returncode == 0, repaired.stderr
    assert json.loads(repaired.stdout) == [{"total": "float", "subject": p, "kept": 7, "summed": 3_000_000}]
    assert pointsnet(tmp_path, "verify").returncode == 0


def test_bench_writes_figures_with_units(tmp_path):
    out = tmp_path / "bench.json"
    run = pointsnet(tmp_path, "bench", "batch-post", "expire", "--events", "2000", "--members", "200",
                    "--lots", "2000", "--json", str(out))
    assert run.returncode == 0, run.stderr
    record = json.loads(out.read_text())
    [posted, expired] = record["results"]
    assert posted["events"] == 2000 and posted["events_per_s"] > 0
    assert expired["lots"] == 2000 and expired["lots_per_s"] > 0  # and the scenario checked every lot expired
    assert record["machine"]["cores"] >= 1
    # the machine's speed before and after each scenario, to compare runs taken at different times
    assert all(result["reference_before_ms"] > 0 and result["reference_after_ms"] > 0 for result in record["results"])
    assert "machine speed" in run.stdout
    unknown = pointsnet(tmp_path, "bench", "warp-speed")
    assert unknown.returncode != 0 and "unknown scenario" in unknown.stderr


@pytest.mark.skipif(bool(PG_URL), reason="the demo runs on the embedded SQLite default")
def test_serve_demo_comes_up_with_a_living_network(tmp_path):
    env = dict(os.environ, POINTSNET_DATA_DIR=str(tmp_path / "data"), COLUMNS="200")
    env.pop("POINTSNET_DATABASE_URL", None)
    port = free_port()  # other test runs may share this machine
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "services.cli", "serve", "--demo", "--port", str(port)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 150
        printed = []
        while not any("operator@demo.pointsnet" in line for line in printed):  # the demo's dashboard login
            line = server.stdout.readline()
            assert line and time.monotonic() < deadline, "".join(printed)
            printed.append(line)
        operator_password = next(line for line in printed if "operator@demo.pointsnet" in line).split("│")[3].strip()
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                if httpx.get(f"{base}/health", timeout=2).json()["status"] == "ok":
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve --demo did not come up"
            time.sleep(0.5)
        keys = httpx.get(f"{base}/v1/network/keys").json()["keys"]
        assert keys and keys[0]["crv"] == "Ed25519"
        with httpx.Client(base_url=base) as browser:  # the printed login opens the dashboard
            form = browser.get("/dashboard/login").text
            token = form.split('name="csrf_token" value="')[1].split('"')[0]
            signed_in = browser.post("/dashboard/login", headers={"origin": base}, data={
                "email": "operator@demo.pointsnet", "password": operator_password, "csrf_token": token})
            assert signed_in.status_code == 303 and signed_in.headers["location"] == "/dashboard/"
            assert "Network overview" in browser.get("/dashboard/").text
    finally:
        server.terminate()
        server.wait(timeout=30)
    with sqlite3.connect(tmp_path / "data" / "pointsnet.db") as db:
        partners = db.execute("SELECT COUNT(*) FROM partners").fetchone()[0]
        members = db.execute("SELECT COUNT(*) FROM members").fetchone()[0]
        kinds = {row[0] for row in db.execute("SELECT DISTINCT kind FROM entries")}
        days = db.execute("SELECT COUNT(DISTINCT cycle_date) FROM entries").fetchone()[0]
    assert partners >= 5 and members >= 300 and days >= 28
    assert {"earn", "burn", "hold", "capture", "void", "reversal"} <= kinds
    verify = pointsnet(tmp_path, "verify")
    assert verify.returncode == 0, verify.stderr


def test_clearing_run_and_reconcile_from_the_command_line(tmp_path, database_url):
    env = {"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_CLOCK": "2026-11-20T02:00:00Z",
           # on PostgreSQL the test database, reset for this test by the fixture
           "POINTSNET_DATABASE_URL": database_url if PG_URL else None}
    assert run_pointsnet("db", "upgrade", env=env).returncode == 0
    with environment(env):
        n = Network(get_settings())
        t = ContractTerms('postpaid', '1', '0.1', '0.05')
        a = n.create_partner('A', t)['partner_id']
        partner_b = n.create_partner('B', t)['partner_id']
        m = n.enrol(a, phone='+8613812345678')['member_id']
        n.enrol(partner_b, link_token=n.mint_link_token(a, m)['link_token'])
        n.earn(a, m, 'a1', points=500)
        n.burn(partner_b, m, 'b1', 200)
        n.close()

    def cli(*args):
        return run_pointsnet(*args, env=dict(env, POINTSNET_CLOCK="2026-11-21T12:00:00Z"))

    first = cli("clearing", "run", "--cycle", "2026-11-20")
    assert first.returncode == 0, first.stderr
    again = cli("clearing", "run", "--cycle", "2026-11-20")
    assert again.returncode == 0 and json.loads(again.stdout) == json.loads(first.stdout)
    assert "already settled" in again.stderr
    directory = json.loads(first.stdout)["directory"]
    assert cli("reconcile", directory).returncode == 0
    no_log = cli("reconcile", directory, "--partner", partner_b, "--partner-log", str(tmp_path / "missing.csv"))
    assert one_line_error(no_log) and "cannot read" in no_log.stderr, no_log.stderr
    loose = cli("clearing", "run", "--cycle", "20261120")  # date.fromisoformat takes it; YYYY-MM-DD only
    assert one_line_error(loose) and "YYYY-MM-DD" in loose.stderr, loose.stderr
    log = tmp_path / "b.csv"
    log.write_text("reference,kind,points,amount,time\nb1,burn,200,180,2026-11-20T02:00:00Z\n")
    breaks = cli("reconcile", directory, "--partner", partner_b, "--partner-log", str(log),
                 "--breaks-csv", str(tmp_path / "breaks.csv"))
    assert breaks.returncode == 1
    report = (tmp_path / "breaks.csv").read_text().splitlines()
    assert report[0] == "reference,break,ours,theirs,reason" and report[1].startswith("b1,amount_mismatch,")
    log.write_text("reference,kind,points,amount,time\nb1,burn,200,190,2026-11-20T02:00:00Z\n")
    assert cli("reconcile", directory, "--partner", partner_b, "--partner-log", str(log)).returncode == 0
    statement = next(p for p in (tmp_path / "data" / "settlements" / "2026-11-20").iterdir()
                     if p.name == f"statement-{partner_b}.csv")
    statement.write_text(statement.read_text().replace("190", "191"))
    tampered = cli("reconcile", directory)
    assert tampered.returncode == 1 and "NOT RECONCILED" in tampered.stderr
    paid = cli("clearing", "mark-paid", "--cycle", "2026-11-20", "--party", partner_b, "--bank-reference", "BK-1")
    assert paid.returncode == 0 and json.loads(paid.stdout)["status"] == "received"
    twice = cli("clearing", "mark-paid", "--cycle", "2026-11-20", "--party", partner_b, "--bank-reference", "BK-2")
    assert twice.returncode == 2 and "already_recorded: the settlement of" in twice.stderr.replace("\n", " ")
    assert "is already received: recorded" in twice.stderr.replace("\n", " ") and "BK-1" in twice.stderr
    from shared.access import audit  # the payment recorded is audited (user cli); the refused one is not

    with environment(env):
        n = Network(get_settings())
        [logged] = n.tx(lambda tx: audit.page(tx, action="settlement_paid")[0], readonly=True)
        n.close()
    assert (logged["user"], logged["target"]) == ("cli", f"2026-11-20/{partner_b}")
    assert logged["detail"]["params"]["bank_reference"] == "BK-1"
    assert logged["detail"]["outcome"]["status"] == "received"
    early = cli("clearing", "run", "--cycle", "2026-11-21")
    assert early.returncode != 0 and "cannot be settled before" in early.stderr


def test_finance_limits_top_ups_termination_and_alerts_from_the_command_line(tmp_path):
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    shop = json.loads(pointsnet(tmp_path, "partners", "add", "Prepaid Shop", "--billing", "prepaid",
                                check=True).stdout)
    assert shop["limits"]["float_overdraft_minor"] == 0  # prepaid partners draw on a float by default
    pid = shop["partner_id"]
    limits = json.loads(pointsnet(tmp_path, "partners", "limits", pid, "--float-overdraft", "300",
                                  "--exposure-limit", "5000", "--exposure-warn", "0.9", check=True).stdout)
    assert (limits["float_overdraft_minor"], limits["exposure_limit_minor"], limits["exposure_warn_ppm"]) == \
        (300, 5000, 900_000)
    # a postpaid partner has no float: an overdraft given for one is refused, not dropped (until 2026-12-07)
    postpaid = pointsnet(tmp_path, "partners", "add", "Postpaid Shop", "--float-overdraft", "500")
    assert postpaid.returncode == 2 and postpaid.stderr.strip().count("\n") == 0, postpaid.stderr
    assert "--float-overdraft is for a prepaid partner" in postpaid.stderr
    assert "Postpaid Shop" not in pointsnet(tmp_path, "partners", "list", check=True).stdout
    bad = pointsnet(tmp_path, "partners", "limits", pid, "--float-overdraft", "lots")
    assert bad.returncode != 0 and bad.stderr.strip().count("\n") == 0 and "--float-overdraft" in bad.stderr
    topped = json.loads(pointsnet(tmp_path, "clearing", "top-up", pid, "--amount", "1200", "--bank-reference",
                                  "BANK-1", check=True).stdout)
    assert topped["balance_micro"] == 1_200_000_000 and topped["headroom_micro"] == 1_500_000_000
    conflict = pointsnet(tmp_path, "clearing", "top-up", pid, "--amount", "1", "--bank-reference", "BANK-1")
    assert conflict.returncode != 0 and "BANK-1" in conflict.stderr
    assert json.loads(pointsnet(tmp_path, "clearing", "float", pid, check=True).stdout)["topups_minor"] == 1200
    exposure = json.loads(pointsnet(tmp_path, "clearing", "exposure", "--json", check=True).stdout)
    assert [row["state"] for row in exposure] == ["ok"]
    ended = json.loads(pointsnet(tmp_path, "partners", "terminate", pid, check=True).stdout)
    assert ended["status"] == "terminated" and ended["settlement"] == "keep_paying"
    back = pointsnet(tmp_path, "partners", "reactivate", pid)
    assert back.returncode != 0 and "terminated" in back.stderr
    assert "terminated" in pointsnet(tmp_path, "partners", "list", check=True).stdout
    assert "no open alerts" in pointsnet(tmp_path, "alerts", "list", check=True).stdout


def test_money_recorded_from_the_command_line_is_audited_and_a_postpaid_partner_has_no_float(tmp_path):
    """A top-up, an overdraft change and a settlement payment recorded with the commands are audited (user
    cli), as the dashboard's money actions are; until 2026-12-07 none was. And a postpaid partner has no
    float: a top-up or an overdraft for one is refused (not_prepaid, one line, nothing recorded) — a top-up
    was recorded, settling nothing, while the partner's settlements stayed due."""
    from shared.access import audit
    from shared.config import get_settings
    from shared.network import Network
    from tests.cli.inprocess import environment

    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    prepaid = json.loads(pointsnet(tmp_path, "partners", "add", "Prepaid", "--billing", "prepaid",
                                   check=True).stdout)["partner_id"]
    postpaid = json.loads(pointsnet(tmp_path, "partners", "add", "Postpaid", check=True).stdout)["partner_id"]
    for args in (["clearing", "top-up", postpaid, "--amount", "500", "--bank-reference", "TOP-9"],
                 ["partners", "limits", postpaid, "--float-overdraft", "100"]):
        refused = pointsnet(tmp_path, *args)
        assert refused.returncode == 2 and refused.stderr.startswith("error: not_prepaid: "), refused.stderr
        assert refused.stderr.strip().count("\n") == 0
    assert json.loads(pointsnet(tmp_path, "clearing", "float", postpaid, check=True).stdout)["topups_minor"] == 0
    assert json.loads(pointsnet(tmp_path, "partners", "limits", postpaid, "--float-overdraft", "none",
                                check=True).stdout)["float_overdraft_minor"] is None  # lifting one is no money

    pointsnet(tmp_path, "clearing", "top-up", prepaid, "--amount", "500", "--bank-reference", "TOP-1", check=True)
    pointsnet(tmp_path, "clearing", "top-up", prepaid, "--amount", "500", "--bank-reference", "TOP-1", check=True)
    pointsnet(tmp_path, "partners", "limits", prepaid, "--float-overdraft", "300", check=True)
    with environment({"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_DATABASE_URL": None}):
        network = Network(get_settings())
        logged = network.tx(lambda tx: audit.page(tx, limit=100)[0], readonly=True)
        network.close()
    money = [(e["action"], e["user"], e["target"], e["detail"]) for e in reversed(logged)
             if e["action"] in ("float.topup_recorded", "partner.limits_changed")]
    assert [m[:3] for m in money] == [("partner.limits_changed", "cli", postpaid),  # lifting its overdraft
                                      ("float.topup_recorded", "cli", prepaid),  # once: the second recorded nothing
                                      ("partner.limits_changed", "cli", prepaid)]
    assert money[1][3]["amount_minor"] == 500 and money[1][3]["bank_reference"] == "TOP-1"
    assert money[2][3]["changes"] == {"float_overdraft_minor": 300}


@pytest.mark.parametrize("cycle", ["9999-12-31", "9000-01-01", "0001-01-01", "1999-12-31"])
def test_a_cycle_outside_the_range_reports_cover_is_refused_in_one_line(tmp_path, cycle):
    """docs/operations.md: a mistake on the command line is one line, never a traceback. A cycle is
    one reports can cover (2000-01-01 … 8999-12-31): the last day of the calendar has no cut-off
    (the next day does not exist) and a cycle in year 1 is no business day of the network."""
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    for command in (["clearing", "run", "--cycle", cycle],
                    ["clearing", "mark-paid", "--cycle", cycle, "--party", "network", "--bank-reference", "B-1"]):
        done = pointsnet(tmp_path, *command)
        assert one_line_error(done) and "--cycle lies between 2000-01-01 and 8999-12-31" in done.stderr, done.stderr
        assert done.stdout == ""
    assert not (tmp_path / "data" / "settlements" / cycle).exists()


@pytest.mark.parametrize("amount", ["99999999999999999999999", "9223372036855"])
def test_a_top_up_larger_than_the_ledger_holds_is_refused_in_one_line(tmp_path, amount):
    """A top-up is at most 9223372036854 minor units (its micro-units fit a 64-bit ledger column):
    more is invalid_amount in one line, not "Python int too large to convert to SQLite INTEGER"."""
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    shop = json.loads(pointsnet(tmp_path, "partners", "add", "Shop", "--billing", "prepaid",
                                check=True).stdout)["partner_id"]
    done = pointsnet(tmp_path, "clearing", "top-up", shop, "--amount", amount, "--bank-reference", "bank-1")
    assert one_line_error(done) and "at most 9223372036854 minor units" in done.stderr, done.stderr
    assert json.loads(pointsnet(tmp_path, "clearing", "float", shop, check=True).stdout)["topups_minor"] == 0


def test_limits_larger_than_the_ledger_holds_are_refused_in_one_line(tmp_path):
    """Float overdrafts and exposure limits are at most 9223372036854 minor units, set with a partner or
    later; the partner is not registered when its limits are refused."""
    huge = "99999999999999999999999"
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    for options in (["--exposure-limit", huge], ["--billing", "prepaid", "--float-overdraft", huge],
                    ["--exposure-limit", "9223372036855"]):
        done = pointsnet(tmp_path, "partners", "add", "Too Big", *options)
        assert one_line_error(done) and "at most 9223372036854 minor units" in done.stderr, (options, done.stderr)
    assert "Too Big" not in pointsnet(tmp_path, "partners", "list", check=True).stdout
    shop = json.loads(pointsnet(tmp_path, "partners", "add", "Shop", "--billing", "prepaid",
                                check=True).stdout)["partner_id"]
    for option in ("--exposure-limit", "--float-overdraft"):
        done = pointsnet(tmp_path, "partners", "limits", shop, option, huge)
        assert one_line_error(done) and "at most 9223372036854 minor units" in done.stderr, (option, done.stderr)
    limits = json.loads(pointsnet(tmp_path, "partners", "limits", shop, check=True).stdout)
    assert (limits["float_overdraft_minor"], limits["exposure_limit_minor"]) == (0, None)
    most = json.loads(pointsnet(tmp_path, "partners", "limits", shop, "--exposure-limit", "9223372036854",
                                check=True).stdout)
    assert most["exposure_limit_minor"] == 9223372036854


@pytest.mark.parametrize("command, refusal", [
    (["partners", "add", "Too Big", "--base-rate", "1e30"], "base_rate: 1e30 must be at most 1000000000000"),
    (["partners", "add", "Too Big", "--point-value", "1e30"], "point_value: 1e30 must be at most 9223372036854.775807"),
    (["partners", "add", "Too Big", "--issuance-fee", "1e30"],
     "issuance_fee: 1e30 must be at most 9223372036854.775807"),
    (["partners", "add", "Too Big", "--base-rate", "1e999999999"], "base_rate: 1e999999999 must be at most"),
    (["alerts", "ack", "99999999999999999999999"], "no open alert 99999999999999999999999"),
    (["alerts", "ack", "9223372036854775808"], "no open alert 9223372036854775808"),
])
def test_a_number_too_large_for_the_database_is_one_line(tmp_path, command, refusal):
    """A number the database cannot hold is refused in one line with a non-zero exit, never a traceback,
    and nothing is stored: a contract term above 9223372036854.775807 (its millionths fit a 64-bit
    column) names the term and its bound, an alert id beyond 64 bits is no open alert — the domain's
    refusal, not the generic "a number is out of range" of a value that reached the database."""
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    done = pointsnet(tmp_path, *command)
    assert one_line_error(done) and refusal in done.stderr, done.stderr
    assert "out of range" not in done.stderr and done.stdout == "", done.stderr
    assert "Too Big" not in pointsnet(tmp_path, "partners", "list", check=True).stdout


def test_reports_publish_by_hand_and_the_reports_job_write_each_set_once(network, clock, database_url, monkeypatch):
    """`pointsnet reports publish` run while the scheduled reports job publishes: both found the same
    sets unwritten and both wrote them (a set written twice; or one rename failing under the other's)."""
    import threading

    from services.clearing.jobs import ledger_jobs
    from shared.reports import delivery
    from tests.factories import make_member, make_partner

    shop = make_partner(network, "Tea House")
    network.earn(shop, make_member(network, shop), "e1", points=100)
    clock.advance(days=2)
    assert network.settle_due()
    real_write, writes, both = delivery.write_set, [], threading.Event()

    def write_set(network_, period, target):
        writes.append(target.name)
        if len(writes) == 2:
            both.set()
        both.wait(timeout=3)  # the two publishers side by side, if they can be
        return real_write(network_, period, target)

    monkeypatch.setattr(delivery, "write_set", write_set)
    [job] = [job for job in ledger_jobs(network) if job.name == "reports"]
    scheduled = threading.Thread(target=job.run)
    scheduled.start()
    try:
        by_hand = run_pointsnet("reports", "publish", env={
            "POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
            "POINTSNET_CLOCK": clock.now().isoformat()})
    finally:
        scheduled.join(timeout=60)
    assert by_hand.returncode == 0, by_hand.stderr[-500:]
    assert writes and len(writes) == len(set(writes)), writes  # each set written once, by one of them
    assert (delivery.reports_dir(network) / "cycles" / writes[0] / delivery.INDEX).exists()
