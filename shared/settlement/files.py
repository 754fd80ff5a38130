"""Settlement files, as pure functions of a cycle's obligation lines: same lines, same bytes.

Nothing here reads a clock, a run id, a locale or the machine: anyone with read
access to the ledger recomputes identical files (see docs/settlement-files.md).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from shared.money import round_micro_to_minor
from shared.settlement.netting import NETWORK, bilateral_sums, net_positions, refuse_sum_beyond_64_bits

# 2: the manifest carries the ledger checkpoint at cut-off; 3: the network has its net position (and
# its network-summary.csv row) in every cycle, at 0 when it has no line. Older versions still verify.
FORMAT_VERSION = 3

STATEMENT_COLUMNS = (
    "record_type", "cycle_date", "partner_id", "transaction_id", "reference", "entry_kind", "line_kind",
    "counterparty", "points", "amount", "contract_version", "original_transaction_id", "original_cycle_date",
    "amount_minor", "payment_date", "record_count", "control_points", "control_amount",
)
SUMMARY_COLUMNS = ("record_type", "cycle_date", "party", "pays_minor", "receives_minor", "net_minor",
                   "payment_date", "record_count", "control_net_minor")
BILATERAL_COLUMNS = ("record_type", "cycle_date", "payer", "payee", "line_kind", "points", "amount",
                     "amount_minor", "record_count", "control_amount_minor")


@dataclass(frozen=True)
class LineRecord:
    line_id: str
    transaction_id: str
    entry_kind: str
    entry_partner_id: str | None
    reference: str | None
    payer: str
    payee: str
    kind: str
    points: int
    amount_micro: int
    contract_version: int | None
    original_transaction_id: str | None
    original_cycle_date: date | None


@dataclass(frozen=True)
class CycleFiles:
    files: dict[str, bytes]  # name -> content
    manifest: bytes
    net_positions: dict[str, int]


def exact(micro: int) -> str:
    """An exact micro-unit amount as a decimal number of minor units with six places."""
    return f"{Decimal(micro).scaleb(-6):.6f}"


def _csv(columns: tuple[str, ...], rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row[key] for key in columns})
    return out.getvalue().encode("utf-8")


def group_totals(lines: list[LineRecord]) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(payer, payee, kind) -> (points, exact amount) over the cycle's lines."""
    totals: dict[tuple[str, str, str], tuple[int, int]] = {}
    for line in lines:
        points, amount = totals.get((line.payer, line.payee, line.kind), (0, 0))
        totals[(line.payer, line.payee, line.kind)] = (points + line.points, amount + line.amount_micro)
    return totals


def detail_row(line: LineRecord, partner_id: str, cycle: date) -> dict:
    """One obligation line as the partner sees it: D (or A, an adjustment of an earlier cycle)."""
    sign = 1 if line.payee == partner_id else -1
    adjustment = line.original_cycle_date is not None and line.original_cycle_date != cycle
    return {
        "record_type": "A" if adjustment else "D", "cycle_date": cycle, "partner_id": partner_id,
        "transaction_id": line.transaction_id,
        "reference": line.reference if line.entry_partner_id == partner_id else None,
        "entry_kind": line.entry_kind, "line_kind": line.kind,
        "counterparty": line.payer if sign > 0 else line.payee, "points": sign * line.points,
        "amount": exact(sign * line.amount_micro), "contract_version": line.contract_version,
        "original_transaction_id": line.original_transaction_id,
        "original_cycle_date": line.original_cycle_date,
    }


def statement(partner_id: str, cycle: date, lines: list[LineRecord], sums: dict, net: int,
              payment_date: date, totals: dict | None = None) -> bytes:
    """One partner's statement: header, details, adjustments, bilateral summary, net, trailer."""
    rows: list[dict] = [{"record_type": "H", "cycle_date": cycle, "partner_id": partner_id,
                         "payment_date": payment_date}]
    control_points = control_amount = 0
    for line in lines:
        sign = 1 if line.payee == partner_id else -1
        rows.append(detail_row(line, partner_id, cycle))
        control_points += sign * line.points
        control_amount += sign * line.amount_micro
    totals = totals if totals is not None else group_totals(lines)
    for (payer, payee, kind), minor in sums.items():
        if partner_id not in (payer, payee):
            continue
        sign = 1 if payee == partner_id else -1
        points, amount = totals[(payer, payee, kind)]
        rows.append({"record_type": "S", "cycle_date": cycle, "partner_id": partner_id, "line_kind": kind,
                     "counterparty": payer if sign > 0 else payee, "points": sign * points,
                     "amount": exact(sign * amount), "amount_minor": sign * minor})
    rows.append({"record_type": "N", "cycle_date": cycle, "partner_id": partner_id, "amount_minor": net,
                 "payment_date": payment_date})
    rows.append({"record_type": "T", "cycle_date": cycle, "partner_id": partner_id, "record_count": len(rows) + 1,
                 "control_points": control_points, "control_amount": exact(control_amount)})
    return _csv(STATEMENT_COLUMNS, rows)


def statement_tail(cycle: date, party: str, net: int, payment_date: date, details: int, sums) -> list[dict]:
    """A statement's S records, from ``sums`` — its (payer, payee, kind, points, amount_micro) in key
    order — then its N and T records, for a statement of ``details`` detail records: what both writers
    append after streaming the detail records (the reference ``statement`` builds the same rows)."""
    tail: list[dict] = []
    control_points = control_amount = 0
    for payer, payee, kind, points, amount in sums:
        sign = 1 if payee == party else -1
        points, amount = int(points), int(amount)
        control_points += sign * points
        control_amount += sign * amount
        tail.append({"record_type": "S", "cycle_date": cycle, "partner_id": party, "line_kind": kind,
                     "counterparty": payer if sign > 0 else payee, "points": sign * points,
                     "amount": exact(sign * amount), "amount_minor": sign * round_micro_to_minor(amount)})
    tail.append({"record_type": "N", "cycle_date": cycle, "partner_id": party, "amount_minor": net,
                 "payment_date": payment_date})
    tail.append({"record_type": "T", "cycle_date": cycle, "partner_id": party,
                 "record_count": 1 + details + len(tail) + 1, "control_points": control_points,
                 "control_amount": exact(control_amount)})
    return tail


def network_summary(cycle: date, sums: dict, positions: dict[str, int], payment_date: date, *,
                    turned: bool = True) -> bytes:
    pays: dict[str, int] = {}
    receives: dict[str, int] = {}
    for (payer, payee, _kind), minor in sums.items():
        flow(pays, receives, payer, minor, turned)
        flow(receives, pays, payee, minor, turned)
    return summary_of(cycle, pays, receives, positions, payment_date)


def flow(side: dict[str, int], other_side: dict[str, int], party: str, minor: int, turned: bool = True) -> None:
    """Count one (payer, payee, kind) sum on ``side`` of ``party`` (its pays for the payer, its receives
    for the payee). A sum below zero — reversals of earlier cycles' lines outweighing the cycle's own —
    is money flowing the other way: ``turned`` (format version 3, ``flows_turned``), it counts as a
    positive amount on the other side, so pays and receives are never negative; receives − pays is
    the net position either way."""
    if minor >= 0 or not turned:
        side[party] = side.get(party, 0) + minor
    else:
        other_side[party] = other_side.get(party, 0) - minor


def summary_of(cycle: date, pays: dict[str, int], receives: dict[str, int], positions: dict[str, int],
               payment_date: date) -> bytes:
    """``network-summary.csv`` from what each party pays and receives (rounded sums) and its net position."""
    rows = [{"record_type": "D", "cycle_date": cycle, "party": party, "pays_minor": pays.get(party, 0),
             "receives_minor": receives.get(party, 0), "net_minor": net, "payment_date": payment_date}
            for party, net in positions.items()]
    rows.append({"record_type": "T", "cycle_date": cycle, "record_count": len(rows) + 1,
                 "control_net_minor": sum(positions.values())})
    return _csv(SUMMARY_COLUMNS, rows)


def bilateral(cycle: date, lines: list[LineRecord], sums: dict, totals: dict | None = None) -> bytes:
    totals = totals if totals is not None else group_totals(lines)
    rows = []
    for (payer, payee, kind), minor in sums.items():
        points, amount = totals[(payer, payee, kind)]
        rows.append({"record_type": "D", "cycle_date": cycle, "payer": payer, "payee": payee, "line_kind": kind,
                     "points": points, "amount": exact(amount), "amount_minor": minor})
    rows.append({"record_type": "T", "cycle_date": cycle, "record_count": len(rows) + 1,
                 "control_amount_minor": sum(sums.values())})
    return _csv(BILATERAL_COLUMNS, rows)


def network_always(format_version: int) -> bool:
    """Whether the network has a net position in a cycle where it has no line (format version 3 on)."""
    return format_version >= 3


def flows_turned(format_version: int) -> bool:
    """Whether a negative bilateral sum counts on the other side of ``network-summary.csv`` (pays and
    receives never negative: format version 3 on; earlier versions added it, negative, where it was)."""
    return format_version >= 3


def statement_name(party: str) -> str:
    return f"statement-{party}.csv"


def manifest_header(cycle: date, *, currency: str, cutoff: str, payment_date: date, ledger_position: dict,
                    format_version: int, checkpoint: dict | None) -> dict:
    """The manifest's fields other than its files and positions, by format version."""
    header = {"format_version": format_version, "cycle_date": cycle.isoformat(), "currency": currency,
              "cutoff": cutoff, "payment_date": payment_date.isoformat(), "ledger_position": ledger_position}
    if format_version >= 2:
        if checkpoint is None:
            raise ValueError("a version 2 manifest carries the ledger checkpoint at cut-off")
        header["checkpoint"] = checkpoint
    return header


def build(cycle: date, lines: list[LineRecord], *, currency: str, cutoff: str, payment_date: date,
          ledger_position: dict, format_version: int = FORMAT_VERSION, checkpoint: dict | None = None) -> CycleFiles:
    """Every file of a cycle and its manifest. Raises NettingError if positions do not sum to zero."""
    lines = sorted(lines, key=lambda l: (l.transaction_id, l.line_id))
    sums = bilateral_sums((l.payer, l.payee, l.kind, l.amount_micro) for l in lines)
    totals = group_totals(lines)
    for (payer, payee, kind), (_points, amount) in sorted(totals.items()):
        refuse_sum_beyond_64_bits(cycle, payer, payee, kind, amount)
    positions = net_positions(sums, network=network_always(format_version))
    by_party: dict[str, list[LineRecord]] = {}
    for line in lines:
        by_party.setdefault(line.payer, []).append(line)
        by_party.setdefault(line.payee, []).append(line)
    files: dict[str, bytes] = {}
    for party in positions:
        if party == NETWORK:
            continue
        files[statement_name(party)] = statement(party, cycle, by_party.get(party, []), sums, positions[party],
                                                 payment_date, totals)
    files["network-summary.csv"] = network_summary(cycle, sums, positions, payment_date,
                                                   turned=flows_turned(format_version))
    files["bilateral.csv"] = bilateral(cycle, lines, sums, totals)
    manifest = manifest_header(cycle, currency=currency, cutoff=cutoff, payment_date=payment_date,
                               ledger_position=ledger_position, format_version=format_version,
                               checkpoint=checkpoint) | {
        "net_positions": positions,
        "files": [{"name": name, "sha256": hashlib.sha256(content).hexdigest(),
                   "records": content.count(b"\n") - 1} for name, content in sorted(files.items())],
    }
    return CycleFiles(files, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode(), positions)


class HashedFile:
    """A settlement file being written: its SHA-256 and newline count kept as the bytes go out, then
    flushed to disk on close (what the manifest records: the hash and the records after the header)."""

    def __init__(self, path: Path):
        self.path = path
        self.handle = open(path, "wb")
        self.sha = hashlib.sha256()
        self.newlines = 0

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.sha.update(data)
        self.newlines += data.count(b"\n")

    def set_aside(self) -> None:
        """Close the handle and keep the hash and count: another thread (or later step) resumes it."""
        self.handle.close()

    def resume(self) -> None:
        self.handle = open(self.path, "ab")

    def close(self) -> dict:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        return {"sha256": self.sha.hexdigest(), "records": self.newlines - 1}
