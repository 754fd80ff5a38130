"""`pointsnet bench dashboard` runs its page queries on a settled cycle and records them in ms."""

import json

from tests.cli.test_commands import pointsnet


def test_bench_dashboard_records_each_page_query(tmp_path):
    out = tmp_path / "bench.json"
    run = pointsnet(tmp_path, "bench", "dashboard", "--events", "1500", "--members", "150", "--json", str(out))
    assert run.returncode == 0, run.stderr
    [result] = json.loads(out.read_text())["results"]
    assert result["scenario"] == "dashboard" and result["entries"] > 1000
    figures = [key for key in result if key.endswith("_ms")]
    assert {"explorer_ms", "entry_detail_ms", "bilateral_ms", "positions_ms"} <= set(figures)
    assert all(result[key] > 0 for key in figures)  # (and the scenario checked the sampled proof verifies)
