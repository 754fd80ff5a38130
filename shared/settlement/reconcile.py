"""Reconciliation: verify a settlement directory, and match a partner's own log against its statement."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import tempfile
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from shared.db.database import Tx
from shared.models import Entry
from shared.settlement.files import exact
from shared.ledger.cycles import cycle_end
from shared.settlement.runs import cutoff_checkpoint, ledger_position
from shared.settlement.streaming import write_cycle
from shared.transparency.note import open_note


@dataclass(frozen=True)
class Finding:
    check: str
    subject: str
    detail: str


def _records(content: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8"))))


def _micro(text: str) -> int:
    return int(Decimal(text) * 1_000_000)


def check_controls(name: str, content: bytes) -> list[Finding]:
    """Trailer and net records must agree with the detail records they summarise."""
    found: list[Finding] = []
    rows = _records(content)
    trailer = [r for r in rows if r["record_type"] == "T"]
    if len(trailer) != 1:
        return [Finding("control_totals", name, "exactly one trailer record expected")]
    trailer = trailer[0]
    if int(trailer["record_count"]) != len(rows):
        found.append(Finding("control_totals", name, f"trailer says {trailer['record_count']} records, "
                                                      f"file has {len(rows)}"))
    if name.startswith("statement-"):
        details = [r for r in rows if r["record_type"] in ("D", "A")]
        points = sum(int(r["points"]) for r in details)
        amount = sum(_micro(r["amount"]) for r in details)
        if points != int(trailer["control_points"]) or amount != _micro(trailer["control_amount"]):
            found.append(Finding("control_totals", name, f"details sum to {points} points / {exact(amount)}, "
                                                          f"trailer says {trailer['control_points']} / "
                                                          f"{trailer['control_amount']}"))
        net = [int(r["amount_minor"]) for r in rows if r["record_type"] == "N"]
        summary = sum(int(r["amount_minor"]) for r in rows if r["record_type"] == "S")
        if net != [summary]:
            found.append(Finding("control_totals", name, f"net {net} differs from the bilateral summary {summary}"))
    elif name == "network-summary.csv":
        total = sum(int(r["net_minor"]) for r in rows if r["record_type"] == "D")
        if total != 0 or int(trailer["control_net_minor"]) != total:
            found.append(Finding("control_totals", name, f"net positions sum to {total}, not zero"))
    elif name == "bilateral.csv":
        total = sum(int(r["amount_minor"]) for r in rows if r["record_type"] == "D")
        if total != int(trailer["control_amount_minor"]):
            found.append(Finding("control_totals", name, f"details sum to {total}, trailer says "
                                                          f"{trailer['control_amount_minor']}"))
    return found


def verify_directory(tx: Tx, directory: Path, public_keys: dict[str, Ed25519PublicKey]) -> list[Finding]:
    """Signature, digests, control totals, and a fresh recomputation from the ledger, byte for byte."""
    manifest_path, signature_path = directory / "manifest.json", directory / "manifest.json.sig"
    if not manifest_path.exists() or not signature_path.exists():
        return [Finding("manifest", str(directory), "manifest.json or manifest.json.sig is missing")]
    manifest_bytes = manifest_path.read_bytes()
    found: list[Finding] = []
    try:
        signature = json.loads(signature_path.read_bytes())
        key = public_keys[signature["key_id"]]
        key.verify(base64.b64decode(signature["signature"]), manifest_bytes)
    except (KeyError, ValueError, InvalidSignature) as exc:
        found.append(Finding("signature", "manifest.json", f"the network's signature does not verify ({exc!r})"))
    manifest = json.loads(manifest_bytes)
    listed = {entry["name"]: entry for entry in manifest["files"]}
    present = {p.name for p in directory.iterdir() if p.is_file()} - {"manifest.json", "manifest.json.sig"}
    for name in sorted(present - set(listed)):
        found.append(Finding("digest", name, "file is not listed in the manifest"))
    for name, entry in sorted(listed.items()):
        path = directory / name
        if not path.exists():
            found.append(Finding("digest", name, "listed in the manifest but missing"))
            continue
        content = path.read_bytes()
        if hashlib.sha256(content).hexdigest() != entry["sha256"]:
            found.append(Finding("digest", name, "SHA-256 differs from the manifest"))
        found.extend(check_controls(name, content))
    cycle = date.fromisoformat(manifest["cycle_date"])
    version = manifest.get("format_version")
    if version not in (1, 2, 3):
        return found + [Finding("manifest", "manifest.json", f"unknown format_version {version!r}")]
    checkpoint = None
    if version >= 2:  # version 1 manifests carry no checkpoint and are recomputed as version 1
        found.extend(check_checkpoint(manifest.get("checkpoint"), public_keys))
        checkpoint = cutoff_checkpoint(tx, cycle)
        if checkpoint is None:
            found.append(Finding("checkpoint", "manifest.json", "the ledger holds no signed checkpoint covering "
                                                                "the cycle"))
            checkpoint = manifest.get("checkpoint")
    with tempfile.TemporaryDirectory(prefix="pointsnet-reconcile-") as scratch:
        fresh = write_cycle(tx, cycle, Path(scratch), currency=tx.settings.currency,
                            cutoff=cycle_end(cycle, tx.settings).isoformat().replace("+00:00", "Z"),
                            payment_date=date.fromisoformat(manifest["payment_date"]),
                            ledger_position=ledger_position(tx, cycle, recount=True), format_version=version,
                            checkpoint=checkpoint)
        if fresh.manifest != manifest_bytes:
            found.append(Finding("recomputation", "manifest.json", "recomputing the cycle from the ledger gives a "
                                                                   "different manifest"))
        for recomputed in sorted(Path(scratch).iterdir()):
            path = directory / recomputed.name
            if not path.exists() or _sha256(path) != _sha256(recomputed):
                found.append(Finding("recomputation", recomputed.name,
                                     "differs from the file recomputed from the ledger"))
    return found


def check_checkpoint(checkpoint: dict | None, public_keys: dict[str, Ed25519PublicKey]) -> list[Finding]:
    """The manifest's checkpoint is a note signed by a network key, and its fields are the note's."""
    if not isinstance(checkpoint, dict) or "note" not in checkpoint:
        return [Finding("checkpoint", "manifest.json", "a version 2 manifest carries the checkpoint at cut-off")]
    note = checkpoint["note"]
    name = note.split("\n", 1)[0]
    for key in public_keys.values():
        try:
            parsed = open_note(note, name, key)
        except ValueError:
            continue
        if parsed.tree_size != checkpoint.get("tree_size") or \
                base64.b64encode(parsed.root_hash).decode() != checkpoint.get("root_hash"):
            return [Finding("checkpoint", "manifest.json", "the checkpoint's fields disagree with its signed note")]
        return []
    return [Finding("checkpoint", "manifest.json", "the checkpoint note is not signed by the network")]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Break:
    reference: str
    kind: str  # missing_on_network | missing_on_partner | points_mismatch | amount_mismatch | kind_mismatch
    ours: str
    theirs: str
    reason: str


def match_partner_log(tx: Tx, statement: bytes, partner_id: str, log: str) -> list[Break]:
    """Compare a partner's log (CSV: reference, kind, points, amount, time) with its statement, by reference."""
    ours: dict[str, dict] = {}
    for row in _records(statement):
        if row["record_type"] in ("D", "A") and row["reference"]:
            entry = ours.setdefault(row["reference"], {"kind": row["entry_kind"], "amount": 0,
                                                       "transaction_id": row["transaction_id"]})
            entry["amount"] += _micro(row["amount"])
    cycle = next((r["cycle_date"] for r in _records(statement)), None)
    breaks: list[Break] = []
    theirs: dict[str, dict] = {}
    for number, row in enumerate(csv.DictReader(io.StringIO(log)), start=2):
        try:
            theirs[row["reference"]] = {"kind": row["kind"], "points": int(row["points"]),
                                        "amount": _micro(row["amount"] or "0")}
        except (KeyError, ValueError, InvalidOperation) as exc:
            raise ValueError(f"partner log line {number}: {exc!r}; columns are reference,kind,points,amount,time")
    points = dict(tx.session.execute(select(Entry.reference, Entry.points).where(
        Entry.partner_id == partner_id, Entry.reference.in_(list(ours) or [""]))).all())
    for reference, mine in sorted(ours.items()):
        if reference not in theirs:
            breaks.append(Break(reference, "missing_on_partner", f"{mine['kind']} {exact(mine['amount'])}", "",
                                "on the statement but not in the partner's log"))
            continue
        other = theirs[reference]
        if other["kind"] != mine["kind"]:
            breaks.append(Break(reference, "kind_mismatch", mine["kind"], other["kind"], "different operation"))
        if points.get(reference) != other["points"]:
            breaks.append(Break(reference, "points_mismatch", str(points.get(reference)), str(other["points"]),
                                "the ledger entry has different points"))
        if mine["amount"] != other["amount"]:
            breaks.append(Break(reference, "amount_mismatch", exact(mine["amount"]), exact(other["amount"]),
                                "the statement's amounts for this reference sum differently"))
    for reference in sorted(set(theirs) - set(ours)):
        entry = tx.session.execute(select(Entry.cycle_date, Entry.kind).where(
            Entry.partner_id == partner_id, Entry.reference == reference)).first()
        if entry is None:
            reason = "no such reference in the ledger"
        elif cycle and entry.cycle_date.isoformat() != cycle:
            reason = f"posted in cycle {entry.cycle_date.isoformat()}, not this one"
        else:
            if theirs[reference]["amount"] == 0:
                continue  # an entry that moves no money is not a break
            reason = "the entry moves no money between parties"
        breaks.append(Break(reference, "missing_on_network", "", f"{theirs[reference]['kind']} "
                                                                 f"{exact(theirs[reference]['amount'])}", reason))
    return breaks
