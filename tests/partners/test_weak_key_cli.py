"""`pointsnet partners add --public-key` and `partners keys add` with a weak Ed25519 public key (small
order: anyone could sign as the partner) or a PEM key on a curve the network does not know (was an
UnsupportedAlgorithm traceback): a one-line error, exit 2, nothing registered."""

from __future__ import annotations

import json

from tests.cli.test_commands import one_line_error, pointsnet
from tests.partner_api.test_weak_keys import IDENTITY, SECP112R1_PEM, spki_pem


def test_a_weak_or_foreign_public_key_is_a_one_line_error(tmp_path):
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    weak, ec = tmp_path / "weak.pem", tmp_path / "ecpub.pem"
    weak.write_text(spki_pem(IDENTITY))
    ec.write_text(SECP112R1_PEM)
    refused = pointsnet(tmp_path, "partners", "add", "Shop", "--public-key", str(weak))
    assert one_line_error(refused) and refused.returncode == 2 and refused.stdout == "", refused.stderr
    assert "validation_failed" in refused.stderr and "weak Ed25519 public key" in refused.stderr, refused.stderr
    created = json.loads(pointsnet(tmp_path, "partners", "add", "Shop", check=True).stdout)  # the name is free
    for path, says in ((weak, "weak Ed25519 public key"), (ec, "not an Ed25519 public key")):
        added = pointsnet(tmp_path, "partners", "keys", "add", created["partner_id"], "--public-key", str(path))
        assert one_line_error(added) and added.returncode == 2 and added.stdout == "", added.stderr
        assert says in added.stderr, added.stderr
    assert json.loads(pointsnet(tmp_path, "partners", "keys", "list", created["partner_id"], check=True).stdout) == []
