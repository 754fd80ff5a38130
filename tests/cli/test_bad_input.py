"""Bad input on the command line is refused in one line before anything changes or any long work
runs: `keys rotate` leaves the keyring as it was, `bench` checks where it will write its record
before it measures, a SQLite URL without a file is a configuration error, `partners keygen` names
what it cannot write, and a partner that does not exist is `unknown_partner`."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.config import Settings
from tests.cli.inprocess import pointsnet as run_pointsnet


def pointsnet(tmp_path, *args, env=None):
    """``pointsnet ARGS`` on the embedded database of ``tmp_path/data``."""
    return run_pointsnet(*args, env={"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_DATABASE_URL": None,
                                     **(env or {})})


def one_line_error(done, code: int = 2) -> bool:
    return done.returncode == code and "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0


@pytest.fixture
def network_ready(tmp_path):
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    assert pointsnet(tmp_path, "keys", "init").returncode == 0
    return tmp_path / "data" / "keys" / "pii-keys.json"


# keys rotate: nothing changes in the keyring until the options and the database are known good

@pytest.mark.parametrize("options", [
    ("--batch-size", "99999999999999999999999999", "--settle-seconds", "0"),
    ("--batch-size", "1000001", "--settle-seconds", "0"),
    ("--settle-seconds", "99999999999999999999999999"),
    ("--settle-seconds", "inf"),
    ("--settle-seconds", "nan"),
])
def test_keys_rotate_with_an_option_out_of_range_changes_no_key(tmp_path, network_ready, options):
    before = network_ready.read_bytes()
    done = pointsnet(tmp_path, "keys", "rotate", *options)
    assert one_line_error(done), done.stderr
    assert network_ready.read_bytes() == before


def test_keys_rotate_activating_with_an_option_out_of_range_changes_no_key(tmp_path, network_ready):
    added = json.loads(pointsnet(tmp_path, "keys", "rotate", "--settle-seconds", "0").stdout)["active_key"]
    before = network_ready.read_bytes()
    done = pointsnet(tmp_path, "keys", "rotate", "--activate", added, "--settle-seconds", "1e400")
    assert one_line_error(done), done.stderr
    assert network_ready.read_bytes() == before


def test_keys_rotate_with_an_unreachable_database_changes_no_key(tmp_path, network_ready):
    before = network_ready.read_bytes()
    done = pointsnet(tmp_path, "keys", "rotate", "--settle-seconds", "0",
                     env={"POINTSNET_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"})
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert "phase 1" not in done.stderr, done.stderr
    assert network_ready.read_bytes() == before


def test_keys_rotate_at_the_bounds_still_rotates(tmp_path, network_ready):
    done = pointsnet(tmp_path, "keys", "rotate", "--batch-size", "1000000", "--settle-seconds", "0")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(network_ready.read_text())["keys"]) == 2


# bench: where the record goes is checked before the benchmark runs; a failed write keeps the table

@pytest.fixture
def no_benchmark(monkeypatch):
    import services.bench

    monkeypatch.setattr(services.bench, "run_bench", lambda *a, **k: pytest.fail("the benchmark ran"))


@pytest.mark.parametrize("where", ["directory", "missing parent", "name too long", "empty"])
def test_bench_refuses_a_record_it_cannot_write_before_it_runs(tmp_path, no_benchmark, where):
    path = {"directory": str(tmp_path), "missing parent": str(tmp_path / "nowhere" / "bench.json"),
            "name too long": str(tmp_path / ("b" * 300 + ".json")), "empty": ""}[where]
    done = pointsnet(tmp_path, "bench", "batch-post", "--json", path)
    assert one_line_error(done), done.stderr
    assert "cannot write the benchmark record" in done.stderr, done.stderr


def test_bench_checking_the_record_leaves_no_file_behind(tmp_path, monkeypatch):
    import services.bench

    seen = []
    monkeypatch.setattr(services.bench, "run_bench", lambda *a, **k: seen.append(Path(k["json_file"]).exists()))
    done = pointsnet(tmp_path, "bench", "batch-post", "--json", str(tmp_path / "bench.json"))
    assert done.returncode == 0, done.stderr
    assert seen == [False]


def test_bench_that_cannot_write_its_record_after_running_prints_the_table_and_one_line(tmp_path, monkeypatch):
    import services.bench

    record = tmp_path / "bench.json"

    def scenario(*_args, **_kwargs):
        record.mkdir()  # the path became a directory while the benchmark ran
        return {"scenario": "batch-post", "database": "sqlite", "events": 1, "elapsed_s": 0.1}

    monkeypatch.setattr(services.bench, "scenario_batch_post", scenario)
    done = pointsnet(tmp_path, "bench", "batch-post", "--json", str(record), env={"COLUMNS": "200"})
    assert one_line_error(done), done.stderr
    assert "cannot write the benchmark record" in done.stderr, done.stderr
    assert "pointsnet bench" in done.stdout and "batch-post" in done.stdout, done.stdout


@pytest.mark.parametrize("members", ["0", "-1", "10000001", "99999999999999999999999999"])
def test_bench_refuses_a_member_count_out_of_range(tmp_path, no_benchmark, members):
    done = pointsnet(tmp_path, "bench", "batch-post", "--members", members)
    assert one_line_error(done), done.stderr


# a SQLite database URL without a file

@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:///:memory:", "sqlite+pysqlite://",
                                 "sqlite:///file:x?mode=memory&uri=true",
                                 "sqlite:///file::memory:?uri=true"])
def test_a_sqlite_url_without_a_file_is_a_configuration_error(tmp_path, url):
    done = pointsnet(tmp_path, "alerts", "list", env={"POINTSNET_DATABASE_URL": url})
    assert one_line_error(done), done.stderr
    assert done.stderr.startswith("configuration error: POINTSNET_DATABASE_URL:"), done.stderr
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, database_url=url)


def test_a_sqlite_url_with_a_file_is_accepted(tmp_path):
    url = f"sqlite:///{(tmp_path / 'network.db').as_posix()}"
    assert Settings(data_dir=tmp_path, database_url=url).database_url == url


# partners keygen: a prefix that names no file

@pytest.mark.parametrize("out", ["", "{tmp}/keys/", "{tmp}/" + "k" * 300, ".", "{tmp}/.."])
def test_partners_keygen_refuses_a_prefix_that_names_no_file(tmp_path, out):
    done = pointsnet(tmp_path, "partners", "keygen", "--out", out.format(tmp=tmp_path))
    assert one_line_error(done), done.stderr
    assert [path.name for path in tmp_path.iterdir() if path.name != "data"] == []


def test_partners_keygen_on_a_full_disk_leaves_no_key_to_refuse_the_retry(tmp_path, monkeypatch):
    """Found by the file-system faults review: a full disk left an empty private key behind, and the retry
    once space was freed was refused ("… exists; refusing to overwrite a key")."""
    import errno
    from pathlib import Path

    real = Path.write_bytes

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    done = pointsnet(tmp_path, "partners", "keygen", "--out", str(tmp_path / "acme"))
    assert one_line_error(done) and "No space left on device" in done.stderr, done.stderr
    assert [path.name for path in tmp_path.iterdir() if path.name != "data"] == []
    monkeypatch.setattr(Path, "write_bytes", real)
    done = pointsnet(tmp_path, "partners", "keygen", "--out", str(tmp_path / "acme"))
    assert done.returncode == 0 and (tmp_path / "acme.pem").stat().st_size > 0, done.stderr


# a partner that does not exist

def test_webhook_deliveries_of_an_unknown_partner_is_unknown_partner(tmp_path, network_ready):
    done = pointsnet(tmp_path, "webhooks", "deliveries", "--partner", "ptn_doesnotexist")
    assert one_line_error(done), done.stderr
    assert done.stderr.startswith("error: unknown_partner:"), done.stderr


def test_rules_of_an_unknown_partner_is_unknown_partner(tmp_path, network_ready):
    done = pointsnet(tmp_path, "rules", "show", "--partner", "ptn_doesnotexist")
    assert one_line_error(done), done.stderr
    assert done.stderr.startswith("error: unknown_partner:"), done.stderr


def test_rules_set_with_invalid_yaml_is_one_line_with_where(tmp_path, network_ready):
    document = tmp_path / "bad.yaml"
    document.write_text("base_rate: [1\n  foo: :\n")
    done = pointsnet(tmp_path, "rules", "set", str(document), "--network")
    assert one_line_error(done), done.stderr
    assert done.stderr.startswith("error: validation_failed: the rules document is not valid JSON or YAML"), done.stderr
    assert "line 2, column 6" in done.stderr, done.stderr
    # the very line the dashboard shows (tests/dashboard/test_rules_syntax_error.py)
    assert done.stderr.strip() == ("error: validation_failed: the rules document is not valid JSON or YAML: expected "
                                   "',' or ']', but got ':' at line 2, column 6 (while parsing a flow sequence at "
                                   "line 1, column 12)"), done.stderr


# input that is not what it claims to be (found by a fuzz of every command, 2026-12-07)

def _real_process(tmp_path, *args: bytes | str, stdin: bytes = b""):
    """A real ``pointsnet`` process: its arguments as bytes the shell would pass, its standard input."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "POINTSNET_DATA_DIR": str(tmp_path / "data")}
    env.pop("POINTSNET_DATABASE_URL", None)
    return subprocess.run([sys.executable.encode(), b"-m", b"services.cli",
                           *(a if isinstance(a, bytes) else a.encode() for a in args)],
                          input=stdin, capture_output=True, env=env, cwd=Path(__file__).parents[2], timeout=120)


def test_an_argument_that_is_not_utf_8_is_one_line(tmp_path, network_ready):
    done = _real_process(tmp_path, "partners", "suspend", b"\xff\xfe")
    stderr = done.stderr.decode()
    assert done.returncode == 2 and "Traceback" not in stderr and stderr.strip().count("\n") == 0, stderr[-600:]
    assert stderr.strip() == "error: argument 3 is not UTF-8 text"


def test_a_password_that_is_not_utf_8_is_one_line_and_adds_no_user(tmp_path, network_ready):
    done = _real_process(tmp_path, "users", "add", "a@b.co", "--role", "operator", "--password-stdin",
                         stdin=b"\xff\xfe\xfdaaaaaaaaaaaaaaa\n")
    stderr = done.stderr.decode()
    assert done.returncode == 2 and stderr.strip() == "error: the password is not UTF-8 text", stderr[-600:]
    listed = pointsnet(tmp_path, "users", "list")
    assert listed.returncode == 0 and "a@b.co" not in listed.stdout


def test_members_export_to_a_name_too_long_is_one_line(tmp_path, network_ready):
    done = pointsnet(tmp_path, "members", "export", "mem_x", "--out", str(tmp_path / ("a" * 300)))
    assert one_line_error(done), done.stderr
    assert "cannot be written: File name too long" in done.stderr


def test_a_partner_added_with_an_empty_public_key_file_is_refused_and_not_added(tmp_path, network_ready):
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    done = pointsnet(tmp_path, "partners", "add", "Keyless", "--public-key", str(empty))
    assert one_line_error(done), (done.stdout, done.stderr)
    assert "Keyless" not in pointsnet(tmp_path, "partners", "list").stdout


def test_terminating_again_on_other_terms_is_refused(tmp_path, network_ready):
    added = pointsnet(tmp_path, "partners", "add", "Leaving")
    partner = json.loads(added.stdout)["partner_id"]
    assert pointsnet(tmp_path, "partners", "terminate", partner).returncode == 0
    assert pointsnet(tmp_path, "partners", "terminate", partner).returncode == 0  # the same terms: the first
    done = pointsnet(tmp_path, "partners", "terminate", partner, "--buy-out-rate", "0.5")
    assert one_line_error(done) and done.stderr.startswith("error: termination_conflict:"), done.stderr


def test_clearing_run_into_a_data_directory_it_cannot_write_is_one_line_and_settles_nothing(tmp_path, network,
                                                                                          database_url, clock):
    """Keys given by file, the data directory only holds the settlement files: one that cannot be written
    (a file in its place) was a traceback (until 2026-12-07); the cycle stays unsettled, and settles once
    the directory can be written."""
    from tests.factories import make_member, make_partner

    shop = make_partner(network, "Shop")
    network.earn(shop, make_member(network, shop), "e1", points=10)
    network.signing_key  # noqa: B018 - the network's keys, given by file (new ones from `keys init` are refused)
    keys = network.settings.data_dir / "keys"
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    env = {"POINTSNET_DATABASE_URL": database_url, "POINTSNET_DATA_DIR": str(blocked),
           "POINTSNET_SIGNING_KEY_FILE": str(keys / "network-ed25519.pem"),
           "POINTSNET_PII_KEYS_FILE": str(keys / "pii-keys.json"),
           "POINTSNET_CLOCK": (clock.now() + timedelta(days=1)).isoformat()}
    done = run_pointsnet("clearing", "run", "--cycle", "2026-11-20", env=env)
    assert one_line_error(done, 1) and "settlement files cannot be written" in done.stderr, done.stderr[-800:]
    blocked.unlink()
    settled = run_pointsnet("clearing", "run", "--cycle", "2026-11-20", env=env)
    assert settled.returncode == 0, settled.stderr[-800:]
