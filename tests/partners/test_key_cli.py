"""`pointsnet partners keys add` with a key already registered, or revoked, is a one-line error and a
non-zero exit (docs/operations.md "Partners", docs/security.md)."""

from __future__ import annotations

import json

from tests.cli.test_commands import one_line_error, pointsnet


def test_adding_a_registered_or_revoked_key_again_is_a_one_line_error(tmp_path):
    assert pointsnet(tmp_path, "db", "upgrade").returncode == 0
    keygen = json.loads(pointsnet(tmp_path, "partners", "keygen", "--out", str(tmp_path / "shop"), check=True).stdout)
    created = json.loads(pointsnet(tmp_path, "partners", "add", "Shop", "--public-key", keygen["public_key"],
                                   check=True).stdout)
    again = pointsnet(tmp_path, "partners", "keys", "add", created["partner_id"], "--public-key", keygen["public_key"])
    assert one_line_error(again) and again.stdout == "", again.stderr
    assert "already registered as" in again.stderr and created["key_id"] in again.stderr, again.stderr
    other = pointsnet(tmp_path, "partners", "add", "Other", "--public-key", keygen["public_key"])
    assert one_line_error(other) and "already registered as" in other.stderr, other.stderr
    pointsnet(tmp_path, "partners", "keys", "revoke", created["key_id"], check=True)
    revoked = pointsnet(tmp_path, "partners", "keys", "add", created["partner_id"], "--public-key", keygen["public_key"])
    assert one_line_error(revoked) and "never accepted again" in revoked.stderr and created["key_id"] in revoked.stderr, \
        revoked.stderr
    listed = json.loads(pointsnet(tmp_path, "partners", "keys", "list", created["partner_id"], check=True).stdout)
    assert [k["key_id"] for k in listed] == [created["key_id"]]
