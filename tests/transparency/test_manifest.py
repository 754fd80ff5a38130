"""Settlement manifests of format version 2 carry the checkpoint at cut-off; version 1 still reconciles."""

from __future__ import annotations

import base64
import json
import shutil
from datetime import date

from sqlalchemy import func, select

from shared.models import Entry, LedgerLeaf
from shared.ledger.cycles import cycle_end
from shared.settlement.files import FORMAT_VERSION
from shared.settlement.reconcile import verify_directory
from shared.settlement.runs import ledger_position, settlement_dir, sign_manifest
from shared.settlement.streaming import write_cycle
from shared.signing import network_key_id
from tests.transparency import rfc9162

def _keys(network):
    key = network.signing_key
    return {network_key_id(key): key.public_key()}

def _settle(network, sealed, clock):
    cycle = network.tx(lambda tx: tx.session.get(Entry, sealed.burn).cycle_date)
    clock.advance(days=1)
    # an entry of the next cycle, committed and not yet sealed when the cycle settles
    network.earn(sealed.coffee, sealed.member, "next-day", points=3)
    network.settle(cycle)
    return cycle, settlement_dir(network.settings.data_dir, cycle)

def test_a_new_manifest_carries_the_checkpoint_at_cutoff(network, sealed, clock):
    cycle, directory = _settle(network, sealed, clock)
    manifest = json.loads((directory / "manifest.json").read_bytes())
    assert manifest["format_version"] == FORMAT_VERSION == 3
    checkpoint = manifest["checkpoint"]
    body, _, signature = checkpoint["note"].partition("\n\n")
    raw = base64.b64decode(signature.split(" ")[2])
    network.signing_key.public_key().verify(raw[4:], (body + "\n").encode())
    assert body.split("\n")[1:3] == [str(checkpoint["tree_size"]), checkpoint["root_hash"]]

    def cycle_leaves(tx):
        return tx.session.execute(select(func.max(LedgerLeaf.leaf_index)).join(
            Entry, Entry.id == LedgerLeaf.entry_id).where(Entry.cycle_date <= cycle)).scalar_one()
    assert checkpoint["tree_size"] >= network.tx(cycle_leaves, readonly=True) + 1
    leaves = network.tx(lambda tx: [bytes(h) for h in tx.session.execute(
        select(LedgerLeaf.leaf_hash).order_by(LedgerLeaf.leaf_index)).scalars()], readonly=True)
    assert rfc9162.root(leaves[:checkpoint["tree_size"]]) == base64.b64decode(checkpoint["root_hash"])

    assert network.tx(lambda tx: verify_directory(tx, directory, _keys(network)), readonly=True) == []
    # later checkpoints do not change what the cycle's manifest recomputes to
    network.checkpoint()
    assert network.tx(lambda tx: verify_directory(tx, directory, _keys(network)), readonly=True) == []

def test_a_forged_checkpoint_in_a_manifest_is_found(network, sealed, clock):
    _cycle, directory = _settle(network, sealed, clock)
    manifest = json.loads((directory / "manifest.json").read_bytes())
    manifest["checkpoint"]["note"] = manifest["checkpoint"]["note"].replace(
        f"\n{manifest['checkpoint']['tree_size']}\n", "\n1\n")
    content = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    (directory / "manifest.json").write_bytes(content)
    (directory / "manifest.json.sig").write_bytes(sign_manifest(content, network.signing_key))
    findings = network.tx(lambda tx: verify_directory(tx, directory, _keys(network)), readonly=True)
    assert {f.check for f in findings} >= {"checkpoint", "recomputation"}

def test_a_version_1_directory_still_reconciles(network, sealed, clock, tmp_path):
    """A directory written by Pointsnet before format version 2 (no checkpoint) verifies unchanged."""
    from tests.clearing.test_network_position import as_an_older_release_ran_it

    cycle, directory = _settle(network, sealed, clock)
    old = tmp_path / "v1" / cycle.isoformat()
    old.mkdir(parents=True)
    pay_on = json.loads((directory / "manifest.json").read_bytes())["payment_date"]

    written = network.tx(lambda tx: write_cycle(
        tx, cycle, old, currency=tx.settings.currency,
        cutoff=cycle_end(cycle, tx.settings).isoformat().replace("+00:00", "Z"),
        payment_date=date.fromisoformat(pay_on), ledger_position=ledger_position(tx, cycle), format_version=1),
        readonly=True)
    (old / "manifest.json").write_bytes(written.manifest)
    (old / "manifest.json.sig").write_bytes(sign_manifest(written.manifest, network.signing_key))
    as_an_older_release_ran_it(network, cycle, written.manifest)  # the run kept that manifest's SHA-256
    manifest = json.loads(written.manifest)
    assert manifest["format_version"] == 1 and "checkpoint" not in manifest
    assert network.tx(lambda tx: verify_directory(tx, old, _keys(network)), readonly=True) == []
    # and a v1 directory is still checked: a changed file is found
    statement = next(old.glob("statement-*.csv"))
    statement.write_bytes(statement.read_bytes().replace(b"\n", b"\r\n", 1))
    findings = network.tx(lambda tx: verify_directory(tx, old, _keys(network)), readonly=True)
    assert {f.check for f in findings} >= {"digest"}
    shutil.rmtree(old)
