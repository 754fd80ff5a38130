"""The exit status says whose move it is (docs/operations.md, "Exit status"): 2 when the command is to be
fixed (what the operator typed, a file named, a thing that is not there, a request the network refuses),
1 when the command was right and the system or the data is not (a database that does not answer, a port
taken, a schema that does not match this release) or a check found something. A script can tell them
apart; every one of these is one line on standard error, never a traceback."""

from __future__ import annotations

import json
import socket

import pytest

from tests.cli.inprocess import pointsnet as run_pointsnet

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"  # nothing listens on port 1


def pointsnet(tmp_path, *args, env=None):
    """``pointsnet ARGS`` on the embedded database of ``tmp_path/data``."""
    return run_pointsnet(*args, env={"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_DATABASE_URL": None,
                                     **(env or {})})


def one_line(done, code: int) -> bool:
    return done.returncode == code and "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0


@pytest.fixture(scope="module")
def ready(tmp_path_factory):
    """One network for the module: every command below is refused before it changes anything."""
    home = tmp_path_factory.mktemp("exit-status")
    assert pointsnet(home, "db", "upgrade").returncode == 0
    keys = pointsnet(home, "keys", "init")
    assert keys.returncode == 0, keys.stderr
    return home, json.loads(keys.stdout)["pii_active_key"]


MISTAKES = {  # one of each kind of mistake, across the command groups
    "a date that is not YYYY-MM-DD": ("clearing", "run", "--cycle", "20261101"),
    "a cycle outside the calendar": ("clearing", "mark-paid", "--cycle", "9999-12-31", "--party", "x",
                                     "--bank-reference", "B"),
    "a calendar day that is no date": ("clearing", "calendar", "add", "2026-13-01", "Nothing"),
    "a year out of range": ("clearing", "calendar", "list", "--year", "1999"),
    "a calendar file that is not there": ("clearing", "calendar", "import", "{home}/nope.csv"),
    "a report format": ("reports", "network", "--from", "2026-01-01", "--to", "2026-01-31", "--format", "pdf"),
    "a key prefix naming no file": ("partners", "keygen", "--out", "{home}/keys/"),
    "a limit that is no number": ("partners", "limits", "ptn_x", "--float-overdraft", "lots"),
    "a public key that is not there": ("partners", "add", "Shop", "--public-key", "{home}/nope.pem"),
    "an unknown partner": ("partners", "keys", "list", "ptn_doesnotexist"),
    "an unknown member": ("members", "show", "mbr_doesnotexist"),
    "rules of no scope": ("rules", "show"),
    "an unknown alert": ("alerts", "ack", "99999999999999999999999"),
    "no settlement directory": ("reconcile", "{home}/nowhere"),
    "a partner without its log": ("reconcile", "{home}", "--partner", "ptn_x"),
    "two phases at once": ("keys", "rotate", "--activate", "k1", "--reencrypt-only"),
    "an unknown personal-data key": ("keys", "rotate", "--activate", "k00000000", "--settle-seconds", "0"),
    "a URL that is no network's": ("partner-call", "GET", "/v1/network/keys", "--key-file", "{home}/nope.pem",
                                   "--key-id", "key_x", "--url", "ftp://example.org"),
    "an empty --host": ("serve-dashboard", "--host", ""),
    "an unknown benchmark scale": ("bench", "--scale", "huge"),
    "a missing option (click's usage error)": ("clearing", "run"),
    "a value of the wrong type (click's usage error)": ("clearing", "top-up", "ptn_x", "--amount", "ten",
                                                         "--bank-reference", "B"),
    "a configuration value": ("alerts", "list"),  # with POINTSNET_SETTLEMENT_JOBS=0 below
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_an_operator_mistake_exits_2(ready, mistake):
    home, _ = ready
    args = [arg.format(home=home) for arg in MISTAKES[mistake]]
    env = {"POINTSNET_SETTLEMENT_JOBS": "0"} if mistake == "a configuration value" else None
    done = pointsnet(home, *args, env=env)
    assert one_line(done, 2), (done.returncode, done.stderr[-600:])


def test_retiring_the_active_key_is_refused_with_2(ready):
    home, active = ready
    done = pointsnet(home, "keys", "retire", active)
    assert one_line(done, 2) and "active key" in done.stderr, (done.returncode, done.stderr[-600:])


def test_no_password_at_the_prompt_exits_2(ready):
    """End of input at the password prompt: the command is to be given one (--password-stdin)."""
    home, _ = ready
    done = pointsnet(home, "users", "add", "someone@example.org", "--role", "operator")
    assert done.returncode == 2 and "aborted" in done.stderr, (done.returncode, done.stderr[-600:])


# the command was right, the system is not: 1

def test_a_database_that_does_not_answer_exits_1(tmp_path):
    done = pointsnet(tmp_path, "partners", "list", env={"POINTSNET_DATABASE_URL": UNREACHABLE})
    assert one_line(done, 1) and done.stderr.startswith("database error:"), (done.returncode, done.stderr[-600:])


def test_a_port_another_process_holds_exits_1(ready):
    home, _ = ready
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = pointsnet(home, "serve-dashboard", "--port", str(port))
    assert one_line(done, 1) and f"port {port}" in done.stderr, (done.returncode, done.stderr[-600:])


def test_a_schema_that_is_not_current_exits_1(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "pointsnet.db").touch()  # a database no migration has run on
    done = pointsnet(tmp_path, "serve-api", "--port", "1")
    assert one_line(done, 1) and "db upgrade" in done.stderr, (done.returncode, done.stderr[-600:])


# partner-call: the network's refusal (4xx) is the caller's to fix; its failure (5xx) or no answer is not

@pytest.fixture
def key_file(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from shared.signing import private_key_pem

    path = tmp_path / "partner.pem"
    path.write_bytes(private_key_pem(Ed25519PrivateKey.generate()))
    return path


def _partner_call(tmp_path, key_file, monkeypatch, failure):
    from shared.sdk import PointsnetClient

    def call(*_args, **_kwargs):
        raise failure

    monkeypatch.setattr(PointsnetClient, "call", call)
    return pointsnet(tmp_path, "partner-call", "GET", "/v1/network/keys", "--key-file", str(key_file),
                     "--key-id", "key_x")


@pytest.mark.parametrize("status, code, expected", [(404, "unknown_member", 2), (409, "insufficient_points", 2),
                                                    (503, "statement_unavailable", 1), (500, "internal_error", 1)])
def test_partner_call_exits_by_whose_the_problem_is(tmp_path, key_file, monkeypatch, status, code, expected):
    from shared.sdk import PointsnetAPIError

    done = _partner_call(tmp_path, key_file, monkeypatch, PointsnetAPIError(status, {"code": code, "detail": "x"}))
    assert done.returncode == expected and json.loads(done.stdout)["code"] == code, (done.returncode, done.stderr)


def test_partner_call_with_no_answer_exits_1(tmp_path, key_file, monkeypatch):
    import httpx

    done = _partner_call(tmp_path, key_file, monkeypatch, httpx.ConnectError("Connection refused"))
    assert one_line(done, 1) and "no answer from" in done.stderr, (done.returncode, done.stderr)
