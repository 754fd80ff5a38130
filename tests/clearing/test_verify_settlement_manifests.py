"""``pointsnet verify`` over the settled cycles' manifests: on a host that keeps the settlement files,
each present directory's manifest carries the network's signature, and the checkpoint it carries is
one of the network's stored signed checkpoints. A tampered manifest was found only by ``pointsnet
reconcile <dir>``; verify, the check an operator runs over the whole network, passed it."""

from __future__ import annotations

import json
from datetime import date
from functools import partial

import pytest
from sqlalchemy import delete, select

from shared.models import Checkpoint
from shared.settlement import runs
from shared.settlement.streaming import write_cycle
from tests.cli.inprocess import pointsnet as run_pointsnet
from tests.factories import make_member, make_partner

POSTPAID = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")
FIRST, SECOND = date(2026, 11, 20), date(2026, 11, 21)


@pytest.fixture
def settled(network, clock, database_url):
    """Two settled cycles (the first written as an older release did, format version 2)."""
    coffee = make_partner(network, "CoffeeCo", **POSTPAID)
    book = make_partner(network, "BookMart", **POSTPAID)
    member = make_member(network, coffee, also_linked_to=(book,))
    network.earn(coffee, member, "coffee-1", points=500)
    network.burn(book, member, "book-1", 200)
    clock.advance(days=1)
    network.earn(book, member, "book-2", points=70)
    clock.advance(days=1)
    with pytest.MonkeyPatch.context() as older_release:
        older_release.setattr(runs, "write_cycle", partial(write_cycle, format_version=2))
        network.settle(FIRST)
    network.settle(SECOND)
    clock.advance(minutes=1)
    network.checkpoint()  # the minute's checkpoint after: the store holds more than the manifests' one
    env = {"POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
           "POINTSNET_CLOCK": clock.now().isoformat().replace("+00:00", "Z")}
    settlements = network.settings.data_dir / "settlements"
    return {"env": env, "directories": {cycle: settlements / cycle.isoformat() for cycle in (FIRST, SECOND)}}


def verify(settled) -> tuple[int, list[tuple[str, str]]]:
    done = run_pointsnet("verify", "--json", env=settled["env"])
    report = json.loads(done.stdout)
    return done.returncode, [(o["check"], o["subject"]) for o in report["offences"]]


def test_untouched_settled_cycles_verify(settled):
    manifests = [json.loads((d / "manifest.json").read_text()) for d in settled["directories"].values()]
    assert [m["format_version"] for m in manifests] == [2, runs.FORMAT_VERSION]
    assert all("checkpoint" in m for m in manifests)
    assert verify(settled) == (0, [])


def test_a_manifest_edited_after_signing_is_named(settled):
    """A manifest rewritten (here a field added), its signature kept."""
    path = settled["directories"][SECOND] / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["edited"] = True  # any change of its bytes: a figure, a file's digest, a field added
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    assert verify(settled) == (1, [("settlement_manifest_signature", SECOND.isoformat())])


def test_a_net_position_of_the_manifest_changed_is_named(settled):
    """The reviewer's case: the network's net position in the manifest raised by one, bytes otherwise kept."""
    path = settled["directories"][FIRST] / "manifest.json"
    text = path.read_text()
    network = json.loads(text)["net_positions"]["network"]
    assert text.count(f'"network": {network},') == 1
    path.write_text(text.replace(f'"network": {network},', f'"network": {network + 1},'))
    assert verify(settled) == (1, [("settlement_manifest_signature", FIRST.isoformat())])


def test_a_manifest_without_its_signature_is_named(settled):
    (settled["directories"][FIRST] / "manifest.json.sig").unlink()
    assert verify(settled) == (1, [("settlement_manifest_signature", FIRST.isoformat())])


def test_a_manifest_signed_by_another_key_is_named(settled):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    directory = settled["directories"][SECOND]
    (directory / "manifest.json.sig").write_bytes(
        runs.sign_manifest((directory / "manifest.json").read_bytes(), Ed25519PrivateKey.generate()))
    assert verify(settled) == (1, [("settlement_manifest_signature", SECOND.isoformat())])


def test_a_manifest_whose_checkpoint_the_network_does_not_hold_is_named(network, settled):
    """The checkpoint a manifest carries deleted from the store: the signature still verifies, the
    tree and the other checkpoints are sound, and only the manifest's check names it."""
    carried = json.loads((settled["directories"][FIRST] / "manifest.json").read_text())["checkpoint"]
    network.tx(lambda tx: tx.session.execute(delete(Checkpoint).where(Checkpoint.note == carried["note"])))
    left = network.tx(lambda tx: list(tx.session.execute(select(Checkpoint.note)).scalars()), readonly=True)
    assert left and carried["note"] not in left
    code, offences = verify(settled)
    assert code == 1 and ("settlement_manifest_checkpoint", FIRST.isoformat()) in offences, offences
    assert {check for check, _ in offences} == {"settlement_manifest_checkpoint"}, offences


def test_a_manifest_signed_with_a_checkpoint_not_stored_is_named(network, settled):
    """A manifest whose checkpoint was replaced by a note the network key signed but the network
    never stored (re-signed, as by someone holding the key): its signature holds, its checkpoint is named,
    and it is not the manifest the cycle's run wrote."""
    import base64

    from shared.transparency.note import note_body, sign_note

    directory = settled["directories"][SECOND]
    manifest = json.loads((directory / "manifest.json").read_text())
    carried = manifest["checkpoint"]
    name = carried["note"].split("\n", 1)[0]
    network.clock.advance(hours=5)
    carried["note"] = sign_note(note_body(name, carried["tree_size"], base64.b64decode(carried["root_hash"]),
                                          network.clock.now()), name, network.signing_key)
    forged = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    (directory / "manifest.json").write_bytes(forged)
    (directory / "manifest.json.sig").write_bytes(runs.sign_manifest(forged, network.signing_key))
    assert verify(settled) == (1, [("settlement_manifest_replaced", SECOND.isoformat()),
                                   ("settlement_manifest_checkpoint", SECOND.isoformat())])


def test_a_host_that_keeps_no_settlement_files_checks_no_manifest(network, settled):
    """As for a missing directory: a host without ``settlements/`` verifies the ledger without the files."""
    (settled["directories"][FIRST] / "manifest.json.sig").unlink()
    settlements = settled["directories"][FIRST].parent
    settlements.rename(settlements.with_name("settlements-elsewhere"))
    assert verify(settled) == (0, [])


def test_another_cycles_signed_manifest_put_in_its_place_is_named(settled):
    """A manifest and its signature, both genuine, of another cycle (or an earlier signed state of this one)
    copied over the cycle's own: the signature and its checkpoint verify, but it is not the manifest the
    cycle's settlement run wrote (its SHA-256 is kept with the run)."""
    first, second = settled["directories"][FIRST], settled["directories"][SECOND]
    for name in ("manifest.json", "manifest.json.sig"):
        (first / name).write_bytes((second / name).read_bytes())
    assert verify(settled) == (1, [("settlement_manifest_replaced", FIRST.isoformat())])


def reconcile(settled, directory):
    return run_pointsnet("reconcile", str(directory), env=settled["env"])


def test_reconcile_names_another_cycles_files_put_in_a_cycles_directory(settled):
    """Another cycle's genuine directory copied over a cycle's: every file verifies and recomputes (as the
    other cycle), but the directory is not its own cycle's. ``pointsnet reconcile`` said "reconciled"."""
    import shutil

    first, second = settled["directories"][FIRST], settled["directories"][SECOND]
    intact = reconcile(settled, second)
    assert intact.returncode == 0 and f"cycle {SECOND.isoformat()}:" in intact.stdout, intact.stdout
    shutil.rmtree(second)
    shutil.copytree(first, second)
    done = reconcile(settled, second)
    assert done.returncode == 1 and "NOT RECONCILED" in done.stderr and "reconciled:" not in done.stdout
    assert f"the directory {SECOND.isoformat()} holds the manifest of cycle {FIRST.isoformat()}" \
        in done.stderr.replace("\n", ""), done.stderr
    copy = first.parent.parent / "copy-of-the-first"  # named as a person may: the verdict says which cycle
    shutil.copytree(first, copy)
    checked = reconcile(settled, copy)
    assert checked.returncode == 0 and f"cycle {FIRST.isoformat()}:" in checked.stdout, checked.stdout


def test_reconcile_names_a_signed_manifest_of_the_cycle_that_its_run_did_not_write(network, settled, tmp_path):
    """The cycle's files written again in another format version and signed with the network's key (an
    earlier signed state, or someone holding the key): they recompute byte for byte as that version and
    the signature verifies, but the manifest is not the one the cycle's run wrote, as verify says."""
    import shutil

    first = settled["directories"][FIRST]
    pay_on = date.fromisoformat(json.loads((first / "manifest.json").read_text())["payment_date"])
    again = tmp_path / FIRST.isoformat()
    network.tx(lambda tx: runs.write_cycle_files(tx, FIRST, pay_on, again, network.signing_key))
    assert json.loads((again / "manifest.json").read_text())["format_version"] == runs.FORMAT_VERSION != 2
    shutil.rmtree(first)
    shutil.copytree(again, first)
    assert verify(settled) == (1, [("settlement_manifest_replaced", FIRST.isoformat())])
    done = reconcile(settled, first)
    assert done.returncode == 1 and "NOT RECONCILED: 1 difference" in done.stderr, done.stderr
    assert "manifest: manifest.json: manifest.json is signed by the network but is not the one this cycle's " \
           "settlement run wrote" in done.stderr.replace("\n", ""), done.stderr
