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


@pytest.mark.parametrize("typed", ["2026-12-01T00:00:00+08:60", "2026-12-01T00:00:00-05:75"])
def test_an_offset_of_60_minutes_or_more_is_not_rfc_3339(typed):
    """RFC 3339's time-numoffset has minutes 00-59: +08:60 is refused, not read as +09:00."""
    with pytest.raises(ValueError, match="not an RFC 3339 instant"):
        parse_rfc3339(typed)


@pytest.mark.parametrize("typed", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_instant_beyond_the_calendar_is_a_value_error(typed):
    """The parser's promise, ValueError for anything it cannot read, holds at the ends of the calendar
    too: an instant whose UTC time is before year 1 or after year 9999 is not an OverflowError (which
    the dashboard's forms and the command line do not expect)."""
    with pytest.raises(ValueError, match="beyond the calendar"):
        parse_rfc3339(typed)


def test_the_ends_of_the_calendar_in_utc_are_read():
    assert parse_rfc3339("9999-12-31T23:59:59Z") == datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
    assert parse_rfc3339("0001-01-01T01:00:00+01:00") == datetime(1, 1, 1, tzinfo=timezone.utc)


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


def test_rules_set_with_an_effective_from_beyond_the_calendar_is_one_line(tmp_path, shop):
    done = pointsnet(tmp_path, "rules", "set", "--partner", shop, str(tmp_path / "rules.yaml"),
                     "--effective-from", "9999-12-31T23:59:59-01:00")
    assert one_line_error(done) and "--effective-from" in done.stderr, done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("document", ["base_rate: 1e30\n", "tier_multipliers: {gold: '1e29'}\n", "[]\n"])
def test_rules_set_refuses_a_huge_rate_or_a_document_that_is_not_a_mapping_in_one_line(tmp_path, shop, document):
    (tmp_path / "rules.yaml").write_text(document)
    done = pointsnet(tmp_path, "rules", "set", "--partner", shop, str(tmp_path / "rules.yaml"))
    assert one_line_error(done) and "the rules document is invalid" in done.stderr, done.stderr
    shown = pointsnet(tmp_path, "rules", "show", "--partner", shop)
    assert shown.returncode != 0 and "no rules set" in shown.stderr  # nothing was stored
