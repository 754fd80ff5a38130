"""Reconciliation: verify a settlement directory, and match a partner's own log against its statement."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from shared.clock import parse_rfc3339
from shared.db.database import Tx
from shared.db.lists import chunks
from shared.errors import PointsnetError
from shared.models import Entry, NetworkOrigin, SettlementRun
from shared.money import MAX_MICRO, MoneyError, to_micro
from shared.partners.lifecycle import BUY_OUT_REFERENCE
from shared.settlement.files import exact, statement_name
from shared.settlement.runs import cutoff_checkpoint, cutoff_of, ledger_position, of_the_network
from shared.settlement.streaming import write_cycle
from shared.transparency.note import open_note

MANIFEST, SIGNATURE = "manifest.json", "manifest.json.sig"
FIGURE_FINDINGS = 20  # unreadable figures reported per file; a file of nothing but is one finding more
LOG_COLUMNS = "reference,kind,points,amount,time"


@dataclass(frozen=True)
class Finding:
    check: str
    subject: str
    detail: str


class UnreadableFigure(ValueError):
    """A figure that is not what its format says: not a number, not finite, finer than a micro-unit."""


class PartnerLogError(ValueError):
    """A partner's log that cannot be matched: the message names its line ("partner log line N: …")."""


class ScratchUnavailable(PointsnetError):
    """No temporary directory can be made to recompute a cycle in (a read-only /tmp: a systemd unit with
    ProtectSystem=strict and no PrivateTmp=true, a full disk): the check cannot run, and says why."""
    status, code, title = 503, "scratch_unavailable", "No temporary directory"


_INTEGER = re.compile(r"-?[0-9]{1,19}")
_LOG_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")
_PLAIN_AMOUNT = re.compile(r"(-?)([0-9]{1,13})(?:\.([0-9]{1,6}))?")  # what the files write: read without Decimal


def _integer(text: str | None, what: str, pattern: re.Pattern = _INTEGER) -> int:
    """A whole number, exactly: ASCII digits and a sign, no blanks, underscores or exponent."""
    if text is None or not pattern.fullmatch(text):
        raise UnreadableFigure(f"{what}: {text!r} is not a whole number" if text else f"{what} is empty")
    return int(text)


def _micro(text: str | None, what: str, limit: int = MAX_MICRO) -> int:
    """An amount in minor units as exact micro-units: refused, never rounded, if it has more than six
    decimal places, is not finite or does not fit a ledger amount (or ``limit``: a control total sums
    many of them)."""
    if text is None or not text.strip():
        raise UnreadableFigure(f"{what} is empty")
    plain = _PLAIN_AMOUNT.fullmatch(text)
    if plain:  # the same value to_micro gives, at a tenth of the cost (a statement has a figure per line)
        sign, whole, fraction = plain.groups()
        micro = int(whole) * 1_000_000 + int((fraction or "").ljust(6, "0"))
        if micro > limit:
            raise UnreadableFigure(f"{what}: {text} is out of range")
        return -micro if sign else micro
    if len(text) > 40:
        raise UnreadableFigure(f"{what}: {text[:40]!r}… is too long for an amount")
    try:
        micro = to_micro(text, what=what)  # exact: a seventh decimal place is refused, never rounded away
    except (MoneyError, ArithmeticError) as exc:
        raise UnreadableFigure(str(exc)) from None
    if abs(micro) > limit:
        raise UnreadableFigure(f"{what}: {text} is out of range")
    return micro


def _control_micro(text: str | None, what: str) -> int:
    """A statement's control amount: its detail amounts summed, each at most a ledger amount, so it may
    lie beyond 64 bits (a text of at most 40 characters, as any amount read here)."""
    return _micro(text, what, limit=10 ** 34)


def _numbered(content: bytes) -> list[tuple[int, dict]]:
    """The CSV's records with the line each ends on; raises ValueError (or csv.Error) on text that is no CSV."""
    reader = csv.DictReader(io.StringIO(content.decode("utf-8")))
    return [(reader.line_num, row) for row in reader]


class _Figures:
    """Reads one file's figures exactly, noting every one it cannot read instead of raising."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def _read(self, parse, line: int, row: dict, column: str) -> int:
        try:
            return parse(row.get(column), column)
        except UnreadableFigure as exc:
            self.problems.append(f"line {line} ({row.get('record_type') or '?'} record): {exc}")
            return 0

    def integer(self, line: int, row: dict, column: str) -> int:
        return self._read(_integer, line, row, column)

    def amount(self, line: int, row: dict, column: str) -> int:
        return self._read(_micro, line, row, column)

    def control_amount(self, line: int, row: dict, column: str) -> int:
        return self._read(_control_micro, line, row, column)

    def findings(self, name: str) -> list[Finding]:
        found = [Finding("control_totals", name, problem) for problem in self.problems[:FIGURE_FINDINGS]]
        if len(self.problems) > FIGURE_FINDINGS:
            found.append(Finding("control_totals", name, f"and {len(self.problems) - FIGURE_FINDINGS} more "
                                                         f"figures that cannot be read"))
        return found


def check_controls(name: str, content: bytes) -> list[Finding]:
    """Trailer and net records must agree with the detail records they summarise. A file that is not a
    UTF-8 CSV, or a figure that cannot be read exactly, is a finding naming the file and record."""
    try:
        rows = _numbered(content)
    except (ValueError, csv.Error) as exc:
        return [Finding("control_totals", name, f"not a UTF-8 CSV file ({exc})")]
    trailers = [(line, r) for line, r in rows if r.get("record_type") == "T"]
    if len(trailers) != 1:
        return [Finding("control_totals", name, "exactly one trailer record expected")]
    at, trailer = trailers[0]
    figures = _Figures()
    count = figures.integer(at, trailer, "record_count")
    if name.startswith("statement-"):
        details = [(line, r) for line, r in rows if r.get("record_type") in ("D", "A")]
        points = sum(figures.integer(line, r, "points") for line, r in details)
        amount = sum(figures.amount(line, r, "amount") for line, r in details)
        control_points = figures.integer(at, trailer, "control_points")
        control_amount = figures.control_amount(at, trailer, "control_amount")
        net = [figures.integer(line, r, "amount_minor") for line, r in rows if r.get("record_type") == "N"]
        summary = sum(figures.integer(line, r, "amount_minor") for line, r in rows if r.get("record_type") == "S")
    elif name == "network-summary.csv":
        total = sum(figures.integer(line, r, "net_minor") for line, r in rows if r.get("record_type") == "D")
        control = figures.integer(at, trailer, "control_net_minor")
    elif name == "bilateral.csv":
        total = sum(figures.integer(line, r, "amount_minor") for line, r in rows if r.get("record_type") == "D")
        control = figures.integer(at, trailer, "control_amount_minor")
    if figures.problems:  # sums of figures that cannot be read prove nothing
        return figures.findings(name)
    found: list[Finding] = []
    if count != len(rows):
        found.append(Finding("control_totals", name, f"trailer says {trailer['record_count']} records, "
                                                      f"file has {len(rows)}"))
    if name.startswith("statement-"):
        if points != control_points or amount != control_amount:
            found.append(Finding("control_totals", name, f"details sum to {points} points / {exact(amount)}, "
                                                          f"trailer says {trailer['control_points']} / "
                                                          f"{trailer['control_amount']}"))
        if net != [summary]:
            found.append(Finding("control_totals", name, f"net {net} differs from the bilateral summary {summary}"))
    elif name == "network-summary.csv":
        if total != 0 or control != total:
            found.append(Finding("control_totals", name, f"net positions sum to {total}, not zero"))
    elif name == "bilateral.csv":
        if total != control:
            found.append(Finding("control_totals", name, f"details sum to {total}, trailer says "
                                                          f"{trailer['control_amount_minor']}"))
    return found


def plain_file_name(name: object) -> bool:
    """A name the manifest may list: one file in the directory itself, no path (no separator, not . or ..)."""
    separators = {"/", "\\", os.sep, os.altsep} - {None}
    return isinstance(name, str) and name not in ("", ".", "..") and "\x00" not in name \
        and not any(separator in name for separator in separators)


def read_manifest(manifest_bytes: bytes) -> tuple[dict | None, list[Finding]]:
    """The manifest as a JSON object and no finding, or None and the finding that says why it cannot be read."""
    try:
        manifest = json.loads(manifest_bytes)
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, or nested past reading
        return None, [Finding("manifest", MANIFEST, f"cannot be read: not JSON ({type(exc).__name__}: "
                                                    f"{str(exc)[:200]})")]
    if not isinstance(manifest, dict):
        return None, [Finding("manifest", MANIFEST, f"cannot be read: a JSON {type(manifest).__name__}, "
                                                    f"not an object")]
    return manifest, []


def _listed_files(manifest: dict) -> tuple[dict[str, str | None], list[Finding]]:
    """The manifest's files by name with their SHA-256 (None when it gives none); every entry that
    names no plain file of the directory, or a file twice, is a finding and is not opened."""
    files = manifest.get("files")
    if not isinstance(files, list):
        return {}, [Finding("manifest", MANIFEST, "`files` is not a list of files")]
    listed: dict[str, str | None] = {}
    found: list[Finding] = []
    for number, entry in enumerate(files, start=1):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not plain_file_name(name):
            found.append(Finding("manifest", MANIFEST if not isinstance(name, str) else name,
                                 f"files[{number}]: {name!r} is not a plain file name of the directory "
                                 f"(no path, not . or ..); not opened"))
            continue
        if name in listed:
            found.append(Finding("manifest", name, f"files[{number}]: listed twice"))
            continue
        digest = entry.get("sha256")
        if not isinstance(digest, str):
            found.append(Finding("manifest", name, f"files[{number}]: no sha256"))
            digest = None
        listed[name] = digest
    return listed, found


def _recomputation_inputs(manifest: dict) -> tuple[tuple[date, date, int] | None, list[Finding]]:
    """The cycle date, payment date and format version to recompute with, or None and why not."""
    found: list[Finding] = []
    days = []
    for field in ("cycle_date", "payment_date"):
        value = manifest.get(field)
        try:
            days.append(date.fromisoformat(value))
        except (TypeError, ValueError):
            found.append(Finding("manifest", MANIFEST, f"`{field}` {value!r} is not a date"))
    version = manifest.get("format_version")
    if type(version) is not int or version not in (1, 2, 3):
        found.append(Finding("manifest", MANIFEST, f"unknown format_version {version!r}"))
    return (None if found else (days[0], days[1], version)), found


def _is_settlement_file(name: str) -> bool:
    return name in ("network-summary.csv", "bilateral.csv") or \
        (name.startswith("statement-") and name.endswith(".csv"))


def signature_findings(manifest_bytes: bytes, signature_path: Path,
                       public_keys: dict[str, Ed25519PublicKey]) -> list[Finding]:
    """No finding when the manifest carries a signature of one of the network's keys, else one finding saying why."""
    try:
        signature = json.loads(signature_path.read_bytes())
        key = public_keys[signature["key_id"]]
        key.verify(base64.b64decode(signature["signature"]), manifest_bytes)
    except (KeyError, ValueError, TypeError, RecursionError, InvalidSignature) as exc:
        return [Finding("signature", MANIFEST, f"the network's signature does not verify ({exc!r:.200})")]
    return []


def _unopenable(path: Path) -> str | None:
    """Why a file the manifest lists is not opened: a symbolic link, not a regular file, missing, or a
    name the file system cannot look up (longer than it allows)."""
    try:
        if path.is_symlink() or (path.exists() and not path.is_file()):
            return "listed in the manifest but not a regular file; not opened"
        if not path.exists():
            return "listed in the manifest but missing"
    except OSError as exc:
        return f"listed in the manifest but cannot be looked up ({exc.strerror or exc}); not opened"
    return None


def replaced_manifest(manifest_bytes: bytes, written_sha256: str) -> str | None:
    """Why a manifest whose signature verifies is still not its cycle's (``settlement_manifest_replaced``
    in ``pointsnet verify``, a ``manifest`` finding here), or None: its SHA-256 is not the one the cycle's
    settlement run wrote and kept — another cycle's genuine manifest, with its signature, put in its place."""
    if hashlib.sha256(manifest_bytes).hexdigest() == written_sha256:
        return None
    return (f"{MANIFEST} is signed by the network but is not the one this cycle's settlement run wrote "
            f"(SHA-256 {written_sha256})")


_DIRECTORY_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _cycle_findings(tx: Tx, directory: Path, manifest_bytes: bytes, manifest: dict, *,
                    signed: bool) -> list[Finding]:
    """The manifest is its directory's cycle's: a directory named by a date (as the settlement runs name
    theirs) holds that cycle's manifest, and a signed manifest of a settled cycle is the one its run
    wrote (one that is not signed is named by its signature already, as ``pointsnet verify`` does)."""
    found: list[Finding] = []
    cycle = manifest.get("cycle_date")
    if _DIRECTORY_DATE.fullmatch(directory.name) and directory.name != cycle:
        found.append(Finding("manifest", MANIFEST, f"the directory {directory.name} holds the manifest of cycle "
                                                   f"{cycle}: another cycle's files"))
    try:
        day = date.fromisoformat(cycle) if isinstance(cycle, str) else None
    except ValueError:
        day = None  # named by _recomputation_inputs
    written = signed and day and tx.session.scalar(select(SettlementRun.manifest_sha256).where(
        SettlementRun.cycle_date == day, of_the_network(SettlementRun.cycle_date)))
    problem = written and replaced_manifest(manifest_bytes, written)
    if problem:
        found.append(Finding("manifest", MANIFEST, problem))
    return found


def verify_directory(tx: Tx, directory: Path, public_keys: dict[str, Ed25519PublicKey]) -> list[Finding]:
    """Signature, digests, control totals, and a fresh recomputation from the ledger, byte for byte
    (``verify_cycle_directory``'s findings)."""
    return verify_cycle_directory(tx, directory, public_keys)[1]


def verify_cycle_directory(tx: Tx, directory: Path,
                           public_keys: dict[str, Ed25519PublicKey]) -> tuple[date | None, list[Finding]]:
    """The cycle date the manifest names (None when it names none that can be read) and the findings:
    signature, the manifest being its cycle's (the directory's date, the run's SHA-256), digests, control
    totals, and a fresh recomputation of that cycle from the ledger, byte for byte.

    A damaged or forged directory gives findings, never an exception: a manifest that is not a JSON
    object leaves the files' control totals to check and nothing to recompute against; a manifest
    entry that is not a plain file name is a finding and nothing outside the directory is opened."""
    manifest_path, signature_path = directory / MANIFEST, directory / SIGNATURE
    if not manifest_path.is_file() or not signature_path.is_file():
        return None, [Finding("manifest", str(directory), "manifest.json or manifest.json.sig is missing")]
    manifest_bytes = manifest_path.read_bytes()
    found = signature_findings(manifest_bytes, signature_path, public_keys)
    manifest, unreadable = read_manifest(manifest_bytes)
    found.extend(unreadable)
    if manifest is not None:
        found.extend(_cycle_findings(tx, directory, manifest_bytes, manifest, signed=not found))
    present = {p.name for p in directory.iterdir() if p.is_file()} - {MANIFEST, SIGNATURE}
    if manifest is None:  # nothing to check the digests against or to recompute: the files' own totals still
        for name in sorted(n for n in present if _is_settlement_file(n)):
            found.extend(check_controls(name, (directory / name).read_bytes()))
        return None, found
    listed, problems = _listed_files(manifest)
    found.extend(problems)
    for name in sorted(present - set(listed)):
        found.append(Finding("digest", name, "file is not listed in the manifest"))
    for name, digest in sorted(listed.items()):
        path = directory / name
        problem = _unopenable(path)
        if problem:
            found.append(Finding("digest", name, problem))
            continue
        content = path.read_bytes()
        if digest is not None and hashlib.sha256(content).hexdigest() != digest:
            found.append(Finding("digest", name, "SHA-256 differs from the manifest"))
        found.extend(check_controls(name, content))
    inputs, problems = _recomputation_inputs(manifest)
    if inputs is None:
        return None, found + problems
    cycle, payment_date, version = inputs
    try:
        cutoff = cutoff_of(cycle, tx.settings)
    except OverflowError:  # the last day a date can hold has no end
        return cycle, found + [Finding("manifest", MANIFEST, f"`cycle_date` {cycle.isoformat()} is out of range")]
    checkpoint = None
    if version >= 2:  # version 1 manifests carry no checkpoint and are recomputed as version 1
        origins = set(tx.session.execute(select(NetworkOrigin.origin)).scalars())
        found.extend(check_checkpoint(manifest.get("checkpoint"), public_keys, origins))
        checkpoint = cutoff_checkpoint(tx, cycle)
        if checkpoint is None:
            found.append(Finding("checkpoint", MANIFEST, "the ledger holds no signed checkpoint covering "
                                                         "the cycle"))
            checkpoint = manifest.get("checkpoint")
            if not isinstance(checkpoint, dict):  # nor in the manifest (a finding above): nothing to recompute with
                return cycle, found
    try:
        scratch_directory = tempfile.TemporaryDirectory(prefix="pointsnet-reconcile-")
    except OSError as exc:  # mkdtemp's error, or gettempdir's "No usable temporary directory found in [...]"
        where = f"{exc.filename}: " if exc.filename else ""
        raise ScratchUnavailable(
            f"cannot make a temporary directory to recompute the cycle in ({where}{exc.strerror or exc}); "
            f"give the process a writable temporary directory (TMPDIR; under systemd PrivateTmp=true)") from None
    with scratch_directory as scratch:
        fresh = write_cycle(tx, cycle, Path(scratch), currency=tx.settings.currency,
                            cutoff=cutoff,
                            payment_date=payment_date,
                            ledger_position=ledger_position(tx, cycle, recount=True), format_version=version,
                            checkpoint=checkpoint)
        if fresh.manifest != manifest_bytes:
            found.append(Finding("recomputation", MANIFEST, "recomputing the cycle from the ledger gives a "
                                                            "different manifest"))
        for recomputed in sorted(Path(scratch).iterdir()):
            path = directory / recomputed.name
            if not path.is_file() or path.is_symlink() or _sha256(path) != _sha256(recomputed):
                found.append(Finding("recomputation", recomputed.name,
                                     "differs from the file recomputed from the ledger"))
    return cycle, found


def check_checkpoint(checkpoint: dict | None, public_keys: dict[str, Ed25519PublicKey],
                     origins: set[str]) -> list[Finding]:
    """The manifest's checkpoint is a note signed by a network key, under one of ``origins`` (those the
    network has signed under, ``network_origins``, as ``pointsnet verify`` takes them: not any origin the
    key may have signed for), and its fields are the note's."""
    if not isinstance(checkpoint, dict) or "note" not in checkpoint:
        return [Finding("checkpoint", "manifest.json", "a version 2 manifest carries the checkpoint at cut-off")]
    note = checkpoint["note"]
    if not isinstance(note, str):
        return [Finding("checkpoint", "manifest.json", "the checkpoint's note is not text")]
    name = note.split("\n", 1)[0]
    for key in public_keys.values():
        try:
            parsed = open_note(note, name, key)
        except (ValueError, TypeError):
            continue
        if parsed.tree_size != checkpoint.get("tree_size") or \
                base64.b64encode(parsed.root_hash).decode() != checkpoint.get("root_hash"):
            return [Finding("checkpoint", "manifest.json", "the checkpoint's fields disagree with its signed note")]
        if name not in origins:
            return [Finding("checkpoint", "manifest.json", f"the checkpoint note is signed by the network key under "
                                                           f"{name!r}, an origin this network never signed under")]
        return []
    return [Finding("checkpoint", "manifest.json", "the checkpoint note is not signed by the network")]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class UnverifiedStatement(ValueError):
    """A statement that is not the one the network signed: a partner's log is not matched against it,
    the partner API does not serve it. The message is one line naming the file and the problem;
    ``finding`` is the problem."""

    def __init__(self, message: str, finding: Finding):
        super().__init__(message)
        self.finding = finding


def verified_statement(directory: Path, partner_id: str, public_keys: dict[str, Ed25519PublicKey], *,
                       manifest_sha256: str | None = None) -> bytes:
    """The partner's statement in a settlement directory, read once, only if the manifest's signature
    verifies (and, given ``manifest_sha256``, the manifest is that one: the run's own) and the statement's
    SHA-256 is the one the manifest lists; raises UnverifiedStatement otherwise. The checks are
    verify_directory's, for the one file a partner's log is matched against (or the partner API
    serves)."""
    name = statement_name(partner_id)

    def refuse(finding: Finding) -> UnverifiedStatement:
        return UnverifiedStatement(f"the partner's log is not matched: {name} is not verified ({finding.check}: "
                                   f"{finding.subject}: {finding.detail}); verify the run's files", finding)

    manifest_path, signature_path = directory / MANIFEST, directory / SIGNATURE
    if not manifest_path.is_file() or not signature_path.is_file():
        raise refuse(Finding("manifest", f"{MANIFEST} / {SIGNATURE}", "missing"))
    manifest_bytes = manifest_path.read_bytes()
    if manifest_sha256 is not None and hashlib.sha256(manifest_bytes).hexdigest() != manifest_sha256:
        raise refuse(Finding("manifest", MANIFEST, "SHA-256 differs from the manifest the run wrote"))
    problems = signature_findings(manifest_bytes, signature_path, public_keys)
    manifest, unreadable = read_manifest(manifest_bytes)
    if problems or unreadable:
        raise refuse((problems + unreadable)[0])
    listed, _problems = _listed_files(manifest)
    if not plain_file_name(name) or name not in listed:
        raise refuse(Finding("digest", name, "not listed in the manifest"))
    if listed[name] is None:
        raise refuse(Finding("digest", name, "the manifest gives no sha256"))
    path = directory / name
    problem = _unopenable(path)
    if problem:
        raise refuse(Finding("digest", name, problem))
    content = path.read_bytes()
    if hashlib.sha256(content).hexdigest() != listed[name]:
        raise refuse(Finding("digest", name, "SHA-256 differs from the manifest"))
    return content


@dataclass(frozen=True)
class Break:
    reference: str
    kind: str  # missing_on_network | missing_on_partner | duplicate_on_partner | points_mismatch |
    #            amount_mismatch | kind_mismatch | unreferenced
    ours: str
    theirs: str
    reason: str


def _statement_amounts(statement: bytes) -> tuple[dict[str, dict], dict[str, dict], str | None]:
    """The statement's net exact amount and entry kind per reference, the same per transaction id for
    the records without a reference (another partner's entries, or the partner's own posted without
    one), and its cycle date. The buy-out's reference (``BUY_OUT_REFERENCE``) also keeps the transaction
    ids of its records (``_network_posted``)."""
    try:
        rows = _numbered(statement)
    except (ValueError, csv.Error) as exc:
        raise ValueError(f"the statement cannot be read ({exc}); verify the run's files") from None
    ours: dict[str, dict] = {}
    unreferenced: dict[str, dict] = {}
    for line, row in rows:
        if row.get("record_type") not in ("D", "A"):
            continue
        if row.get("reference"):
            entry = ours.setdefault(row["reference"], {"kind": row.get("entry_kind"), "amount": 0})
            if row["reference"] == BUY_OUT_REFERENCE:
                entry.setdefault("transactions", set()).add(row.get("transaction_id"))
        else:
            entry = unreferenced.setdefault(row.get("transaction_id") or "", {"kind": row.get("entry_kind"),
                                                                               "amount": 0})
        try:
            entry["amount"] += _micro(row.get("amount"), "amount")
        except UnreadableFigure as exc:
            raise ValueError(f"statement line {line}: {exc}; verify the run's files") from None
    return ours, unreferenced, next((r.get("cycle_date") for _line, r in rows), None)


def _network_posted(tx: Tx, partner_id: str, ours: dict[str, dict], unreferenced: dict[str, dict]) -> bool:
    """Move the buy-out the network posted for the partner when it left (``BUY_OUT_REFERENCE``, shown in
    the statement's ``reference`` column though it is none of the partner's) to the records matched by
    transaction id, as a referral bonus is; True if it was on the statement."""
    mine = ours.get(BUY_OUT_REFERENCE)
    if mine is None:
        return False
    entry = tx.session.execute(select(Entry.id, Entry.request).where(
        Entry.partner_id == partner_id, Entry.reference == BUY_OUT_REFERENCE, Entry.kind == "adjustment")).first()
    if entry is None or json.loads(entry.request or "{}").get("kind") != "buy_out" or \
            mine["transactions"] != {entry.id} or entry.id in unreferenced:
        return False
    unreferenced[entry.id] = {"kind": mine["kind"], "amount": mine["amount"]}
    del ours[BUY_OUT_REFERENCE]
    return True


def _own_unreferenced(tx: Tx, partner_id: str, unreferenced: dict[str, dict]) -> dict[str, dict]:
    """Of the statement's records without a reference, those of the partner's own entries (a capture
    posted without one), by transaction id, with the entry's points and, for a capture, its hold's
    reference. Other partners' entries (blank on this statement by design) are left out."""
    own: dict[str, dict] = {}
    for ids in chunks(unreferenced, 1000):  # statement transaction ids looked up in the ledger per query
        for entry_id, points, hold_id, request in tx.session.execute(
                select(Entry.id, Entry.points, Entry.hold_id, Entry.request).where(
                    Entry.partner_id == partner_id, Entry.id.in_(ids))):
            qualifying, buy_out = None, False
            if unreferenced[entry_id]["kind"] in ("bonus", "adjustment"):  # the network posts these for the partner
                asked = json.loads(request or "{}")
                if asked.get("kind") == "referral_bonus":
                    qualifying = asked.get("qualifying_entry_id")
                buy_out = asked.get("kind") == "buy_out"
            own[entry_id] = unreferenced[entry_id] | {"points": points, "hold_id": hold_id, "qualifying": qualifying,
                                                      "buy_out": buy_out}
    holds = sorted({mine["hold_id"] for mine in own.values() if mine["hold_id"]})
    held = dict(tx.session.execute(select(Entry.hold_id, Entry.reference).where(
        Entry.partner_id == partner_id, Entry.kind == "hold", Entry.hold_id.in_(holds or [""]))).all())
    earns = sorted({mine["qualifying"] for mine in own.values() if mine["qualifying"]})
    earned = dict(tx.session.execute(select(Entry.id, Entry.reference).where(
        Entry.partner_id == partner_id, Entry.id.in_(earns or [""]))).all())
    for mine in own.values():
        mine["hold_reference"] = held.get(mine.pop("hold_id"))
        qualifying = mine.pop("qualifying")
        mine["referral_of"] = (earned.get(qualifying) or qualifying) if qualifying else None
    return own


def _unreferenced_break(transaction_id: str, mine: dict) -> Break:
    if mine.get("buy_out"):  # posted by the network when the partner left: the partner has no reference of it
        return Break(transaction_id, "unreferenced", f"{mine['kind']} {exact(mine['amount'])}", "",
                     f"the buy-out of your open points when you left the network (posted by the network, reference "
                     f"{BUY_OUT_REFERENCE}): its lines are on the statement under this transaction id, which the log "
                     f"does not list")
    if mine.get("referral_of"):  # posted by the network for the partner's earn: no reference to give it
        return Break(transaction_id, "unreferenced", f"{mine['kind']} {exact(mine['amount'])}", "",
                     f"the referral bonus your earn {mine['referral_of']} paid (its answer's "
                     f"referral_bonus.transaction_id): its lines are on the statement under this transaction id, "
                     f"which the log does not list")
    hold = f" (of hold {mine['hold_reference']})" if mine.get("hold_reference") else ""
    return Break(transaction_id, "unreferenced", f"{mine['kind']} {exact(mine['amount'])}", "",
                 f"your own {mine['kind']}{hold} was posted without a reference: its lines are on the statement "
                 f"under this transaction id, which the log does not list")


def _log_time(value: str | None, line: int) -> None:
    """A log line's ``time``: an RFC 3339 instant, or empty (no time given; None: the log has no such
    column). Read, not only carried: a line that left its time out has its last field there instead —
    an unquoted ``1,234.50`` gives the amount ``1`` and the time ``234.50`` — and is refused, never read
    as an amount of 1."""
    if value is None or not value.strip():
        return
    try:
        parse_rfc3339(value.strip())
    except ValueError:
        raise PartnerLogError(f"partner log line {line}: time: {value!r} is not an RFC 3339 instant "
                              f"(2026-11-20T10:00:00+08:00; an amount with a thousands separator must be "
                              f"quoted); columns are {LOG_COLUMNS}") from None


def read_partner_log(log: str) -> dict[str, list[dict]]:
    """The partner's log (CSV reference,kind,points,amount,time) by reference, each line of a reference
    with its line number. Amounts are exact (at most six decimal places of the minor unit, finite), a
    time is an RFC 3339 instant or empty, and a line has exactly the header's fields (`time` may be left
    out of the header, then of every line); raises PartnerLogError naming the line otherwise."""
    # a byte-order mark, as Excel writes; strict: a quote left open is an error, not a field that runs on
    # to the end of the file and takes the lines after it
    reader = csv.DictReader(io.StringIO(log.removeprefix("\ufeff")), strict=True)
    theirs: dict[str, list[dict]] = {}
    try:
        if reader.fieldnames is None:  # until 2026-12-07 an empty file reported every line missing on the partner
            raise PartnerLogError(f"partner log line 1: the file is empty; columns are {LOG_COLUMNS}")
        missing = [c for c in ("reference", "kind", "points", "amount") if c not in reader.fieldnames]
        if missing:
            raise PartnerLogError(f"partner log line 1: no column {', '.join(missing)}; columns are {LOG_COLUMNS}")
        for row in reader:
            line = reader.line_num
            if None in row.values():  # a field of the header missing on the line (an empty one is '')
                raise PartnerLogError(f"partner log line {line}: too few fields; columns are {LOG_COLUMNS}")
            if None in row:  # DictReader's restkey: fields past the header's, as an unquoted `1,234.50` makes
                raise PartnerLogError(f"partner log line {line}: too many fields; columns are {LOG_COLUMNS}")
            try:
                points = _integer((row.get("points") or "").strip(), "points", _LOG_INTEGER)
                amount = _micro(row.get("amount") or "0", "amount")
            except UnreadableFigure as exc:
                raise PartnerLogError(f"partner log line {line}: {exc}") from None
            _log_time(row.get("time"), line)
            theirs.setdefault(row["reference"], []).append({"line": line, "kind": row["kind"], "points": points,
                                                            "amount": amount})
    except csv.Error as exc:
        # the reader counts the lines of the records it finished: the broken one starts on the next
        raise PartnerLogError(f"partner log line {reader.line_num + 1}: {exc}") from None
    return theirs


def _duplicate(reference: str, lines: list[dict], mine: dict | None) -> Break:
    return Break(reference, "duplicate_on_partner", f"{mine['kind']} {exact(mine['amount'])}" if mine else "",
                 "; ".join(f"line {o['line']}: {o['kind']} {o['points']} {exact(o['amount'])}" for o in lines),
                 f"the partner's log lists this reference on {len(lines)} lines"
                 + ("" if mine else " and the statement does not"))


def _compared(reference: str, mine: dict, other: dict, points: int | None) -> list[Break]:
    """A reference (or transaction id) on the statement and its one line in the log."""
    breaks: list[Break] = []
    if other["kind"] != mine["kind"]:
        breaks.append(Break(reference, "kind_mismatch", mine["kind"], other["kind"], "different operation"))
    if points != other["points"]:
        breaks.append(Break(reference, "points_mismatch", str(points), str(other["points"]),
                            "the ledger entry has different points"))
    if mine["amount"] != other["amount"]:
        breaks.append(Break(reference, "amount_mismatch", exact(mine["amount"]), exact(other["amount"]),
                            "the statement's amounts for this reference sum differently"))
    return breaks


def match_partner_log(tx: Tx, statement: bytes, partner_id: str, log: str) -> list[Break]:
    """Compare a partner's log (CSV: reference, kind, points, amount, time) with its statement, by reference.

    A reference the log lists more than once is one ``duplicate_on_partner`` break naming every line;
    it is not matched further. A reference of the cycle that is not on the statement (its entry moves no
    money) is matched on kind and points against the ledger entry. The partner's own entry posted
    without a reference (a capture may leave it out) is on the statement under its transaction id
    only: a log line with that transaction id as its reference is matched against it, and without one
    it is an ``unreferenced`` break (never skipped: its money would go unmatched). So are the entries
    the network posts for the partner: a referral bonus (no reference) and the buy-out when it left
    (``BUY_OUT_REFERENCE`` on the statement, none of the partner's: a log line under that reference is
    matched against it too). A line that cannot be read raises PartnerLogError ("partner log line N").
    ``statement`` must be verified_statement's: its amounts are taken as they are."""
    ours, unreferenced, cycle = _statement_amounts(statement)
    bought_out = _network_posted(tx, partner_id, ours, unreferenced)
    logged = read_partner_log(log)
    theirs = {reference: lines[0] for reference, lines in logged.items() if len(lines) == 1}
    breaks: list[Break] = []
    points = dict(tx.session.execute(select(Entry.reference, Entry.points).where(
        Entry.partner_id == partner_id, Entry.reference.in_(list(ours) or [""]))).all())
    for reference, mine in sorted(ours.items()):
        if len(logged.get(reference, ())) > 1:
            breaks.append(_duplicate(reference, logged[reference], mine))
            continue
        if reference not in theirs:
            breaks.append(Break(reference, "missing_on_partner", f"{mine['kind']} {exact(mine['amount'])}", "",
                                "on the statement but not in the partner's log"))
            continue
        breaks.extend(_compared(reference, mine, theirs[reference], points.get(reference)))
    own = _own_unreferenced(tx, partner_id, unreferenced)
    for transaction_id, mine in sorted(own.items()):
        keys = [key for key in (transaction_id, BUY_OUT_REFERENCE if mine["buy_out"] else None) if key in logged]
        lines = [line for key in keys for line in logged[key]]
        if len(lines) > 1:
            breaks.append(_duplicate(transaction_id, lines, mine))
        elif not lines:
            breaks.append(_unreferenced_break(transaction_id, mine))
        else:
            breaks.extend(_compared(keys[0], mine, lines[0], mine["points"]))
    for reference in sorted(set(logged) - set(ours) - set(own) - ({BUY_OUT_REFERENCE} if bought_out else set())):
        if reference not in theirs:
            breaks.append(_duplicate(reference, logged[reference], None))
            continue
        other = theirs[reference]
        entry = tx.session.execute(select(Entry.cycle_date, Entry.kind, Entry.points).where(
            Entry.partner_id == partner_id, Entry.reference == reference)).first()
        if entry is None:
            reason = "no such reference in the ledger"
        elif cycle and entry.cycle_date.isoformat() != cycle:
            reason = f"posted in cycle {entry.cycle_date.isoformat()}, not this one"
        else:  # an entry of the cycle that moves no money: not on the statement, matched against the ledger
            if other["kind"] != entry.kind:
                breaks.append(Break(reference, "kind_mismatch", entry.kind, other["kind"], "different operation"))
            if other["points"] != entry.points:
                breaks.append(Break(reference, "points_mismatch", str(entry.points), str(other["points"]),
                                    "the ledger entry has different points"))
            if other["amount"] == 0:
                continue  # no money moved, and the log says so
            reason = "the entry moves no money between parties"
        breaks.append(Break(reference, "missing_on_network", "", f"{theirs[reference]['kind']} "
                                                                 f"{exact(theirs[reference]['amount'])}", reason))
    return breaks
