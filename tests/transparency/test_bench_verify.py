"""``pointsnet bench verify --scale small``: the scenario's smoke test (correctness of what it measures,
never its speed). The seeded ledger must pass every check of verify, every entry must be sealed, and
the figures carry their units."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from rich.console import Console

from services.bench_verify import VERIFY_SCALES, scenario_verify
from tests.conftest import PG_URL


def test_bench_verify_small_seeds_seals_and_verifies(tmp_path):
    """On the test database's server when there is one (the set-based SQL seeder), else on SQLite."""
    result = scenario_verify(PG_URL or None, scale="small", members=50, console=Console(quiet=True))
    assert result["entries"] == VERIFY_SCALES["small"] == result["transfers"]
    assert result["obligation_lines"] == 3 * VERIFY_SCALES["small"] // 2
    assert result["checkpoints"] >= 10
    assert result["verify_s"] > 0 and result["sealed_per_s"] > 0 and result["entries_per_s"] > 0
    assert result["database"] == ("postgresql" if PG_URL else "sqlite")


def test_bench_verify_is_a_scenario_of_the_command(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "POINTSNET_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "services.cli", "bench", "verify", "--scale", "small",
                           "--members", "20", "--json", str(out)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    [result] = json.loads(out.read_text())["results"]
    assert result["scenario"] == "verify" and result["entries"] == VERIFY_SCALES["small"]
    figures = [k for k, v in result.items() if isinstance(v, (int, float)) and k.endswith("_s")]
    assert {"verify_s", "seal_s", "seed_s"} <= set(figures)
