"""``pointsnet reports …`` as operators run it over the embedded database (in this process:
tests/cli/inprocess.py)."""

import json

import pytest

from shared.config import get_settings
from shared.ledger.cycles import cycle_date_for
from shared.network import Network
from shared.reports.render import csv_values
from tests.cli.inprocess import environment, pointsnet
from tests.conftest import PG_URL


def seed() -> dict:
    n = Network(get_settings())
    a = n.create_partner('Tea House')['partner_id']
    b = n.create_partner('Noodle Bar')['partner_id']
    m = n.enrol(a, phone='+8613812345678')['member_id']
    token = n.mint_link_token(a, m)['link_token']
    n.enrol(b, link_token=token)
    n.earn(a, m, 'e1', amount=12300)
    n.burn(b, m, 'b1', 23)
    ids = {'tea': a, 'noodle': b, 'cycle': cycle_date_for(n.clock.now(), n.settings).isoformat()}
    n.close()
    return ids


def variables(tmp_path, env=None) -> dict:
    return {"POINTSNET_DATA_DIR": str(tmp_path / "data"), **(env or {}), "POINTSNET_DATABASE_URL": None}


def run(tmp_path, *args, env=None):
    """``pointsnet ARGS`` on the data directory of ``tmp_path``."""
    return pointsnet(*args, env=variables(tmp_path, env))


@pytest.mark.skipif(bool(PG_URL), reason="drives the embedded SQLite database")
def test_reports_commands(tmp_path):
    assert run(tmp_path, "db", "upgrade").returncode == 0
    with environment(variables(tmp_path)):
        ids = seed()
    period = ["--from", ids["cycle"], "--to", ids["cycle"]]
    out = tmp_path / "tea.csv"
    made = run(tmp_path, "reports", "partner", ids["tea"], *period, "--format", "csv",
               "--out", str(out))
    assert made.returncode == 0, made.stderr
    values = csv_values(out.read_text())
    assert (values["points.issued"], values["points.redeemed_elsewhere"], values["members.new"]) == ("123", "23", "1")
    assert values["members.average_purchase_amount_minor"] == "12300"
    as_json = run(tmp_path, "reports", "partner", ids["noodle"], *period)
    assert json.loads(as_json.stdout)["flows"]["spent_here"] == [
        {"partner_id": ids["tea"], "name": "Tea House", "points": 23}]
    html = run(tmp_path, "reports", "network", *period, "--format", "html",
               env={"POINTSNET_LOCALE": "zh"})
    assert html.returncode == 0 and "积分网络运营分析" in html.stdout and 'id="chart-flows"' in html.stdout
    backwards = run(tmp_path, "reports", "network", "--from", "2026-02-02", "--to", "2026-02-01")
    assert backwards.returncode == 2 and "ends" in backwards.stderr and backwards.stderr.strip().count("\n") == 0
    wrong = run(tmp_path, "reports", "network", *period, "--format", "pdf")
    assert wrong.returncode == 2 and "--format" in wrong.stderr
    published = run(tmp_path, "reports", "publish")
    assert json.loads(published.stdout) == {"cycles": [], "months": []}   # nothing settled yet


def one_line_error(done, code: int) -> bool:
    return done.returncode == code and "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0


@pytest.mark.parametrize("first", ["20261101", "2026-W45-1"])
def test_a_date_that_is_not_yyyy_mm_dd_is_refused_with_exit_2(tmp_path, first):
    """Python's date.fromisoformat takes these too; docs/reports.md says YYYY-MM-DD."""
    assert run(tmp_path, "db", "upgrade").returncode == 0
    refused = run(tmp_path, "reports", "network", "--from", first, "--to", "2026-11-30")
    assert one_line_error(refused, 2) and "YYYY-MM-DD" in refused.stderr, (refused.returncode, refused.stderr)


def test_a_report_out_to_a_directory_is_a_one_line_error(tmp_path):
    assert run(tmp_path, "db", "upgrade").returncode == 0
    (tmp_path / "out").mkdir()
    refused = run(tmp_path, "reports", "network", "--from", "2026-11-01", "--to", "2026-11-30",
                  "--out", str(tmp_path / "out"))
    assert one_line_error(refused, 2) and "cannot write the report" in refused.stderr, refused.stderr


def test_bench_report_scenario_small(tmp_path):
    out = tmp_path / "bench.json"
    made = run(tmp_path, "bench", "report", "--scale", "small", "--json", str(out))
    assert made.returncode == 0, made.stderr
    [result] = json.loads(out.read_text())["results"]
    assert result["scenario"] == "report" and result["scale"] == "small" and result["cycles"] == 30
    assert result["events"] == 3000 and 0 < result["partner_entries"] <= 3000
    assert {"partner_report_s", "network_report_s", "render_s"} <= set(result)
    assert run(tmp_path, "bench", "report", "--scale", "huge").returncode == 2


def test_publish_into_a_data_directory_it_cannot_write_is_one_line(network, clock, database_url, settings):
    """Found by the file-system faults review: a full or read-only disk (here a file where reports/ goes)
    gave a traceback; now one line, exit 1, and the next run publishes once the directory can be written."""
    from tests.factories import make_member, make_partner

    shop = make_partner(network, "Tea House")
    network.earn(shop, make_member(network, shop), "e1", points=5)
    cycle = cycle_date_for(clock.now(), network.settings)
    clock.advance(days=1)
    network.settle(cycle)
    env = {"POINTSNET_DATA_DIR": str(settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
           "POINTSNET_CLOCK": clock.now().isoformat().replace("+00:00", "Z")}
    (settings.data_dir / "reports").write_text("in the way")
    done = pointsnet("reports", "publish", env=env)
    assert one_line_error(done, 1) and done.stderr.startswith("error: the reports cannot be written"), done.stderr
    (settings.data_dir / "reports").unlink()
    done = pointsnet("reports", "publish", env=env)
    assert done.returncode == 0 and json.loads(done.stdout)["cycles"] == [cycle.isoformat()], done.stderr
