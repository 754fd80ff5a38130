"""`pointsnet verify` on a host without the network's signing key needs the key only where the ledger it
verifies holds a checkpoint the network signed. Whether it holds one was read in a transaction of its
own, before the snapshot verify checks: a checkpoint signed in between was then in the snapshot but its
signature went unchecked, and verify passed where it should have failed with the missing-key message.
The decision is now made from verify's own snapshot."""

from __future__ import annotations

import json

from services.cli import ledger as ledger_cli
from tests.cli.inprocess import pointsnet
from tests.factories import make_member, make_partner
from tests.interleave import Pause, overlap


def test_a_checkpoint_signed_while_verify_starts_is_never_left_unchecked(network, database_url, monkeypatch,
                                                                          tmp_path):
    network.signing_key  # noqa: B018  the writer's key, in its own data directory
    partner = make_partner(network, "CoffeeCo", billing="postpaid", point_value="1")
    network.earn(partner, make_member(network, partner), "e1", points=500)
    replica_host = tmp_path / "replica-host"  # no keys here
    # verify waits right after it decided, without the key, whether the ledger holds a signed checkpoint
    pause = Pause().after(monkeypatch, ledger_cli, "_public_key")
    verified = overlap(lambda: pointsnet("verify", "--json", env={"POINTSNET_DATA_DIR": str(replica_host),
                                                                  "POINTSNET_DATABASE_URL": database_url}),
                       network.checkpoint, pause)
    assert not isinstance(verified.second, Exception), verified.second  # the checkpoint was signed
    done = verified.first
    assert not isinstance(done, Exception), done
    if done.returncode == 2:  # the checkpoint is in what it verifies: it needs the key it does not have
        assert "signing key" in done.stderr and "does not exist" in done.stderr, done.stderr
    else:  # it verified a snapshot taken before the checkpoint: nothing signed went unchecked
        assert done.returncode == 0, (done.stdout, done.stderr)
        report = json.loads(done.stdout)
        assert report["ok"] and report["counts"]["checkpoints"] == 0, report
    assert not (replica_host / "keys").exists()
    # and once the checkpoint is there, verify from that host fails with the missing-key message
    again = pointsnet("verify", "--json", env={"POINTSNET_DATA_DIR": str(replica_host),
                                              "POINTSNET_DATABASE_URL": database_url})
    assert again.returncode == 2 and "signing key" in again.stderr, (again.stdout, again.stderr)
