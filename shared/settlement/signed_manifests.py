"""``pointsnet verify`` over the settled cycles' manifests: each carries the network's signature, and
the checkpoint it carries is one the network stored (whose note verify checks with the tree).

Per settled cycle: one manifest read and one signature checked (``pointsnet reconcile``'s check), one
indexed look-up of the checkpoints of one tree size. ``pointsnet reconcile <directory>`` checks a
directory fully (every file's digest, the control totals, a recomputation from the ledger).

Named findings (check, cycle date, detail):

* ``settlement_manifest_signature`` — the manifest, or its signature file, is missing or cannot be
  read, or its signature does not verify with the network key it names (the current key, or one a
  rotation retired): the manifest was changed after signing, or signed by another key;
* ``settlement_manifest_checkpoint`` — the manifest (format version 2 on) carries no checkpoint, or one
  that is none of the network's stored checkpoints (same size, root and signed note);
* ``settlement_manifest_replaced`` — the manifest is not the one the cycle's settlement run wrote (its
  SHA-256, kept with the run, differs): another cycle's genuine manifest, for example, with its
  signature, put in its place;
* ``settlement_file_missing`` — a file the manifest lists is not in the directory (a statement deleted:
  the partner API answers 503 for it); ``pointsnet clearing run --cycle D`` writes the directory again.
"""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from shared.db.database import Tx
from shared.models import Checkpoint, SettlementRun
from shared.settlement.reconcile import (MANIFEST, SIGNATURE, _listed_files as listed_files, read_manifest,
                                        replaced_manifest, signature_findings)
from shared.settlement.runs import missing, of_the_network, run_directory
from shared.signing_keys import public_keys

MAX_TREE_SIZE = 2**63 - 1  # a size a 64-bit column holds: a larger one is looked up nowhere


def manifest_offences(tx: Tx, public_key: Ed25519PublicKey | None, limit: int = 100) -> list[tuple[str, str, str]]:
    """The findings over every settled cycle's manifest (``of_the_network``) whose directory is present,
    at most ``limit`` per check. Only on a host that keeps the settlement files (its data directory has
    ``settlements/``, as for ``settlement_directory_missing``, which names a missing directory) and
    with the network's key (none: the network has signed nothing yet)."""
    if public_key is None or missing(tx.settings.data_dir / "settlements"):
        return []
    keys = public_keys(tx, public_key)  # the current key and every one a rotation retired, by key id
    found: list[tuple[str, str, str]] = []
    for cycle, written in tx.session.execute(select(SettlementRun.cycle_date, SettlementRun.manifest_sha256).where(
            of_the_network(SettlementRun.cycle_date)).order_by(SettlementRun.cycle_date)):
        directory = run_directory(tx, cycle)
        if missing(directory):
            continue
        for check, detail in _cycle_findings(tx, directory, keys, written):
            if sum(1 for f in found if f[0] == check) < limit:
                found.append((check, cycle.isoformat(), detail))
        if len(found) >= 2 * limit:
            break
    return found


def _cycle_findings(tx: Tx, directory: Path, keys: dict[str, Ed25519PublicKey],
                    written_sha256: str) -> list[tuple[str, str]]:
    try:
        manifest_bytes = (directory / MANIFEST).read_bytes()
        if not (directory / SIGNATURE).is_file():
            raise FileNotFoundError(f"{SIGNATURE} is missing")
        unsigned = signature_findings(manifest_bytes, directory / SIGNATURE, keys)  # reconcile's check
    except OSError as exc:
        return [("settlement_manifest_signature",
                 f"{MANIFEST} or {SIGNATURE} cannot be read ({exc.strerror or exc}): `pointsnet reconcile "
                 f"{directory}` checks the directory")]
    found = [("settlement_manifest_signature", f"{MANIFEST}: {finding.detail}; `pointsnet reconcile {directory}` "
                                               "names what differs") for finding in unsigned]
    replaced = None if found else replaced_manifest(manifest_bytes, written_sha256)  # signed, but not this run's
    if replaced:
        found.append(("settlement_manifest_replaced", replaced))
    manifest, _unreadable = read_manifest(manifest_bytes)  # unreadable and signed: the signature is named
    if manifest is not None:
        problem = _checkpoint_problem(tx, manifest)
        if problem:
            found.append(("settlement_manifest_checkpoint", problem))
        lost = listed_files_missing(directory, manifest)
        if lost:
            found.append(("settlement_file_missing", f"{', '.join(lost[:5])}{' …' if len(lost) > 5 else ''} "
                          f"listed in {MANIFEST} {'is' if len(lost) == 1 else 'are'} not in {directory}: `pointsnet "
                          f"clearing run --cycle {directory.name}` writes the directory again"))
    return found


def listed_files_missing(directory: Path, manifest: dict) -> list[str]:
    """The plain file names the manifest lists that are not files of ``directory`` (a stat each; their
    digests are ``pointsnet reconcile``'s check). Names that are not plain names are reconcile's findings."""
    listed, _not_plain = listed_files(manifest)  # reconcile's reading of the list, its name checks included
    return [name for name in listed if not (directory / name).is_file()]


def _checkpoint_problem(tx: Tx, manifest: dict) -> str | None:
    """Why the manifest's checkpoint is none of the stored ones, or None. Version 1 manifests carry none."""
    carried = manifest.get("checkpoint")
    if carried is None and manifest.get("format_version") == 1:
        return None
    if not isinstance(carried, dict):
        return "the manifest carries no checkpoint at cut-off"
    size, root, note = carried.get("tree_size"), carried.get("root_hash"), carried.get("note")
    if type(size) is not int or not 0 <= size <= MAX_TREE_SIZE or not isinstance(root, str) \
            or not isinstance(note, str):
        return "the manifest's checkpoint is malformed (a tree size, a root hash and a note)"
    # by size (indexed) and note: a quiet network signs one size every minute, each under its own time
    stored = tx.session.execute(select(Checkpoint.root_hash).where(Checkpoint.tree_size == size,
                                                                   Checkpoint.note == note)).scalars().all()
    if any(base64.b64encode(bytes(hash_)).decode() == root for hash_ in stored):
        return None
    return (f"the manifest's checkpoint of {size} leaves is none of the network's stored signed checkpoints "
            "(its note, root or size differs from every one)")
