"""``pointsnet rules check`` names the rules versions whose tier multipliers name a tier that
POINTSNET_TIERS no longer has (exit 1); ``rules show`` warns of them; ``rules set`` refuses tier
multipliers while tiers are switched off, in one line."""

import json

from tests.cli.inprocess import pointsnet as run_pointsnet

NO_GOLD = json.dumps({"levels": [{"name": "regular", "threshold": 0}, {"name": "silver", "threshold": 1000}]})


def pointsnet(tmp_path, *args, tiers=None):
    return run_pointsnet(*args, env={"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_DATABASE_URL": None,
                                     "POINTSNET_TIERS": tiers})


def test_rules_check_and_show_flag_a_dropped_tier(tmp_path):
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    shop = json.loads(pointsnet(tmp_path, "partners", "add", "Shop").stdout)["partner_id"]
    (tmp_path / "rules.yaml").write_text("base_rate: 1\ntier_multipliers: {silver: 2, gold: 3}\n")
    assert pointsnet(tmp_path, "rules", "set", str(tmp_path / "rules.yaml"), "--partner", shop).returncode == 0
    assert pointsnet(tmp_path, "rules", "check").returncode == 0

    checked = pointsnet(tmp_path, "rules", "check", tiers=NO_GOLD)
    assert checked.returncode == 1
    assert checked.stderr.strip() == (f"{shop} version 1 (in_force): tier_multipliers: gold is no longer a tier "
                                      "(the tiers are regular, silver): its multiplier never applies")
    shown = pointsnet(tmp_path, "rules", "show", "--partner", shop, tiers=NO_GOLD)
    assert shown.returncode == 0 and "warning: version 1: tier_multipliers: gold is no longer a tier" in shown.stderr
    assert json.loads(shown.stdout)["warnings"] == [
        "tier_multipliers: gold is no longer a tier (the tiers are regular, silver): its multiplier never applies"]

    refused = pointsnet(tmp_path, "rules", "set", str(tmp_path / "rules.yaml"), "--partner", shop,
                        tiers='{"enabled": false}')
    assert refused.returncode != 0 and "tiers are switched off" in refused.stderr
    assert "Traceback" not in refused.stderr and refused.stderr.strip().count("\n") == 0
