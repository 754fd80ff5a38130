"""`pointsnet keys rotate --reencrypt-only` when members are sealed under a personal-data key this host's
keyring no longer holds (the key file edited by hand, an old key deleted): one configuration error line,
exit 2, naming each missing key id and how many members it holds, and nothing re-sealed — was a raw
KeyError traceback part way through, the members after it never re-sealed. Found by review."""

from __future__ import annotations

import json
import secrets

import pytest
from sqlalchemy import select

from shared.config import ConfigurationError, Settings
from shared.keys import PiiKey, new_keyring_json, write_keyring
from shared.members.privacy import Keyring
from shared.members.rotation import missing_keys, rotate_batch
from shared.models import Member
from shared.network import Network
from tests.cli.inprocess import pointsnet
from tests.factories import make_member, make_partner


def test_members_under_a_key_missing_from_the_keyring_stop_the_rotation_in_one_line(tmp_path, database_url, clock):
    data_dir = tmp_path / "data"
    network = Network(Settings(data_dir=data_dir), database_url=database_url, clock=clock)
    try:
        shop = make_partner(network)
        for n in range(3):
            make_member(network, shop, phone=f"+861381234567{n}")
        old = network.keyring.active.id
        key_file = data_dir / "keys" / "pii-keys.json"
        kept = json.loads(key_file.read_text())
        # by hand: a new key, made active, and the old one deleted (its members can no longer be opened here)
        fresh = new_keyring_json()
        write_keyring(key_file, fresh)
        before = network.tx(lambda tx: tx.session.execute(select(Member.id, Member.phone_ct, Member.phone_bidx)
                                                          .order_by(Member.id)).all(), readonly=True)
    finally:
        network.close()
    env = {"POINTSNET_DATA_DIR": str(data_dir), "POINTSNET_DATABASE_URL": database_url}
    done = pointsnet("keys", "rotate", "--reencrypt-only", "--settle-seconds", "0", env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().count("\n") == 0 and done.stdout == "", done.stderr
    assert "configuration error" in done.stderr and f"{old} (3 members)" in done.stderr, done.stderr
    assert "keyring" in done.stderr, done.stderr
    network = Network(Settings(data_dir=data_dir), database_url=database_url, clock=clock)
    try:
        after = network.tx(lambda tx: tx.session.execute(select(Member.id, Member.phone_ct, Member.phone_bidx)
                                                         .order_by(Member.id)).all(), readonly=True)
        assert after == before  # nothing re-sealed
    finally:
        network.close()
    # given the keyring that has the old key again (beside the new one), the rotation completes
    write_keyring(key_file, {"active": fresh["active"], "keys": kept["keys"] | fresh["keys"]})
    done = pointsnet("keys", "rotate", "--reencrypt-only", "--settle-seconds", "0", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["resealed"] == 3 and json.loads(done.stdout)["left"] == 0


def test_a_batch_meeting_a_key_gone_from_the_keyring_names_it(network):
    """The key file changed under a running rotation: the batch names the missing key, as the command
    does before it starts, not a KeyError."""
    shop = make_partner(network)
    make_member(network, shop, phone="+8613812345670")
    old = network.keyring.active.id
    fresh = PiiKey("knew", secrets.token_bytes(32), secrets.token_bytes(32))
    without_old = Keyring(fresh.id, {fresh.id: fresh})
    assert network.tx(lambda tx: missing_keys(tx, without_old), readonly=True) == {old: 1}
    assert network.tx(lambda tx: missing_keys(tx, network.keyring), readonly=True) == {}
    with pytest.raises(ConfigurationError, match=f"{old} \\(1 member\\)"):
        network.tx(lambda tx: rotate_batch(tx, without_old, 10))
