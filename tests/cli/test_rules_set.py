"""``pointsnet rules set``: --effective-from is read as strictly as the dashboard reads it (RFC 3339
with seconds and its offset, shared.clock.parse_rfc3339), and a document is refused in one line."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from shared.clock import parse_rfc3339
from tests.cli.inprocess import pointsnet as run_pointsnet

LENIENT_INSTANTS = ["20261201T000000Z", "2026-W49-2T00:00:00Z", "2026-12-01T00:00Z", "2026-12-01T00:00:00+0800",
                    "2026-12-01 00:00:00Z", "2026-12-01", "2026-12-01T00:00:00", "2026-02-30T00:00:00Z",
                    "2026-12-01T24:00:00Z", "2026-335T00:00:00Z", " 2026-12-01T00:00:00Z", ""]
RULES = "base_rate: 2\n"


def pointsnet(tmp_path, *args):
    return run_pointsnet(*args, env={"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_DATABASE_URL": None})


def one_line_error(done) -> bool:
    return done.returncode != 0 and "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0


@pytest.fixture
def shop(tmp_path):
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    added = pointsnet(tmp_path, "partners", "add", "Shop")
    assert added.returncode == 0, added.stderr
    (tmp_path / "rules.yaml").write_text(RULES)
    return json.loads(added.stdout)["partner_id"]


@pytest.mark.parametrize("typed", LENIENT_INSTANTS)
def test_the_strict_parser_refuses_other_forms(typed):
    with pytest.raises(ValueError):
        parse_rfc3339(typed)


@pytest.mark.parametrize("typed, instant", [
    ("2026-12-01T00:00:00+08:00", datetime(2026, 11, 30, 16, tzinfo=timezone.utc)),
    ("2026-12-01T00:00:00.250Z", datetime(2026, 12, 1, 0, 0, 0, 250_000, tzinfo=timezone.utc)),
    ("2026-12-01t00:00:00z", datetime(2026, 12, 1, tzinfo=timezone.utc)),
    ("2026-12-01T00:00:00-05:30", datetime(2026, 12, 1, 5, 30, tzinfo=timezone.utc)),
])
def test_the_strict_parser_reads_rfc_3339(typed, instant):
    assert parse_rfc3339(typed) == instant


@pytest.mark.parametrize("typed", ["20261201T000000Z", "2026-W49-2T00:00:00Z", "2026-12-01T00:00Z",
                                   "2026-12-01T00:00:00+0800", "2026-12-01", ""])
def test_rules_set_refuses_an_effective_from_that_is_not_rfc_3339(tmp_path, shop, typed):
    for scope in (["--partner", shop], ["--network"]):
        done = pointsnet(tmp_path, "rules", "set", *scope, str(tmp_path / "rules.yaml"), "--effective-from", typed)
        assert one_line_error(done) and "--effective-from is an RFC 3339 instant" in done.stderr, done.stderr
        assert done.stdout == ""
    shown = pointsnet(tmp_path, "rules", "show", "--partner", shop)
    assert shown.returncode != 0 and "no rules set" in shown.stderr  # nothing was stored


def test_rules_set_takes_an_rfc_3339_instant(tmp_path, shop):
    later = (datetime.now(timezone.utc) + timedelta(days=400)).replace(microsecond=0)
    typed = later.astimezone(timezone(timedelta(hours=8))).isoformat()
    done = pointsnet(tmp_path, "rules", "set", "--partner", shop, str(tmp_path / "rules.yaml"),
                     "--effective-from", typed)
    assert done.returncode == 0, done.stderr
    stored = json.loads(done.stdout)
    assert stored["version"] == 1 and datetime.fromisoformat(stored["effective_from"]) == later


def test_rules_set_refuses_a_lenient_campaign_date_in_one_line(tmp_path, shop):
    document = tmp_path / "campaign.json"
    document.write_text('{"campaigns": [{"id": "weekend", "name": "Weekend", "starts_on": 0, '
                        '"ends_on": "2026-11-30", "multiplier": 2}]}')
    done = pointsnet(tmp_path, "rules", "set", "--partner", shop, str(document))
    assert one_line_error(done), done.stderr
    assert "campaign weekend: starts_on is a date YYYY-MM-DD, not 0" in done.stderr
