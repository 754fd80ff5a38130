"""``partners keygen --out PREFIX`` writes PREFIX.pem and PREFIX.pub.pem, as its help says, whatever
dots the prefix holds (it wrote acme.pem for --out acme.v2)."""

from __future__ import annotations

from tests.cli.inprocess import pointsnet


def test_a_prefix_with_a_dot_keeps_its_whole_name(tmp_path):
    done = pointsnet("partners", "keygen", "--out", str(tmp_path / "acme.v2"),
                     env={"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_DATABASE_URL": None})
    assert done.returncode == 0, done.stderr
    assert sorted(path.name for path in tmp_path.iterdir() if path.name != "data") == [
        "acme.v2.pem", "acme.v2.pub.pem"]
    again = pointsnet("partners", "keygen", "--out", str(tmp_path / "acme.v2"),
                      env={"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_DATABASE_URL": None})
    assert again.returncode != 0 and "exists" in again.stderr
