"""The network is a party of every cycle (format version 3): its net position, its row in
network-summary.csv and its settlement are there at 0 when it has no line — no fees, nothing prepaid —
alike from both writers and the reference builder. A version 2 directory, which named only the
parties of the lines, still reconciles."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import select

from shared.ledger.cycles import cycle_end
from shared.models import Settlement
from shared.settlement.calendar import payment_date
from shared.settlement.reconcile import verify_directory
from shared.settlement.runs import compute, cutoff_checkpoint, ledger_position, settlement_dir, sign_manifest
from shared.settlement.streaming import write_cycle
from shared.signing import network_key_id
from tests.factories import make_member, make_partner

CYCLE = date(2026, 11, 20)
FREE = dict(billing="postpaid", point_value="1", issuance_fee="0", redemption_fee_rate="0")


def keys(network):
    key = network.signing_key
    return {network_key_id(key): key.public_key()}


def free_cycle(network, clock) -> tuple[str, str]:
    """Postpaid partners without fees: the cycle's only line is the reimbursement between them."""
    coffee, book = make_partner(network, "CoffeeCo", **FREE), make_partner(network, "BookMart", **FREE)
    member = make_member(network, coffee, also_linked_to=(book,))
    network.earn(coffee, member, "c1", points=500)
    network.burn(book, member, "b1", 200)
    clock.advance(days=1)
    return coffee, book


def summary_rows(directory) -> list[str]:
    return (directory / "network-summary.csv").read_text().splitlines()[1:]


def test_the_network_has_its_row_and_settlement_when_it_has_no_line(network, clock):
    coffee, book = free_cycle(network, clock)
    result = network.settle(CYCLE)
    assert result["net_positions"] == dict(sorted({coffee: -200, book: 200, "network": 0}.items()))
    directory = settlement_dir(network.settings.data_dir, CYCLE)
    assert summary_rows(directory) == sorted([f"D,2026-11-20,{coffee},200,0,-200,2026-11-23,,",
                                              f"D,2026-11-20,{book},0,200,200,2026-11-23,,",
                                              "D,2026-11-20,network,0,0,0,2026-11-23,,"]) + ["T,2026-11-20,,,,,,4,0"]
    manifest = json.loads((directory / "manifest.json").read_bytes())
    assert manifest["format_version"] == 3 and manifest["net_positions"]["network"] == 0
    assert network.tx(lambda tx: verify_directory(tx, directory, keys(network)), readonly=True) == []
    settled = network.tx(lambda tx: {s.party: (s.net_minor, s.status) for s in tx.session.execute(
        select(Settlement).where(Settlement.cycle_date == CYCLE)).scalars()}, readonly=True)
    assert settled == {coffee: (-200, "due"), book: (200, "due"), "network": (0, "nothing_due")}


def test_the_writers_and_the_reference_builder_write_the_network_row_alike(network, clock, tmp_path):
    """The files settled (single pass on PostgreSQL, the generic writer on SQLite), the generic
    writer's and the reference builder's are the same bytes, the network's row included."""
    free_cycle(network, clock)
    network.settle(CYCLE)
    settled = settlement_dir(network.settings.data_dir, CYCLE)
    generic = tmp_path / "generic"
    generic.mkdir()

    def recompute(tx):
        pay_on = payment_date(tx, CYCLE)
        written = write_cycle(tx, CYCLE, generic, currency=tx.settings.currency,
                              cutoff=cycle_end(CYCLE, tx.settings).isoformat().replace("+00:00", "Z"),
                              payment_date=pay_on, ledger_position=ledger_position(tx, CYCLE, recount=True),
                              checkpoint=cutoff_checkpoint(tx, CYCLE), generic=True)
        return written, compute(tx, CYCLE, pay_on)

    written, reference = network.tx(recompute, readonly=True)
    assert written.manifest == reference.manifest == (settled / "manifest.json").read_bytes()
    assert written.net_positions["network"] == reference.net_positions["network"] == 0
    assert {p.name for p in generic.iterdir()} == set(reference.files)
    for name, content in reference.files.items():
        assert (generic / name).read_bytes() == content == (settled / name).read_bytes(), name
    assert b"\nD,2026-11-20,network,0,0,0," in reference.files["network-summary.csv"]


def as_an_older_release_ran_it(network, cycle: date, manifest: bytes) -> None:
    """The cycle's run as the release that wrote its version 2 directory kept it: with that manifest's
    SHA-256 (reconcile names a signed manifest that is not the one its cycle's run wrote)."""
    import hashlib

    from sqlalchemy import update

    from shared.models import SettlementRun

    network.tx(lambda tx: tx.session.execute(update(SettlementRun).where(SettlementRun.cycle_date == cycle)
                                             .values(manifest_sha256=hashlib.sha256(manifest).hexdigest())))


def test_a_version_2_directory_without_the_network_row_still_reconciles(network, clock, tmp_path):
    coffee, book = free_cycle(network, clock)
    network.settle(CYCLE)  # signs the checkpoint at cut-off a version 2 manifest carries
    old = tmp_path / "v2" / CYCLE.isoformat()
    old.mkdir(parents=True)

    def write_v2(tx):
        return write_cycle(tx, CYCLE, old, currency=tx.settings.currency,
                           cutoff=cycle_end(CYCLE, tx.settings).isoformat().replace("+00:00", "Z"),
                           payment_date=payment_date(tx, CYCLE), ledger_position=ledger_position(tx, CYCLE),
                           format_version=2, checkpoint=cutoff_checkpoint(tx, CYCLE))

    written = network.tx(write_v2, readonly=True)
    (old / "manifest.json").write_bytes(written.manifest)
    (old / "manifest.json.sig").write_bytes(sign_manifest(written.manifest, network.signing_key))
    as_an_older_release_ran_it(network, CYCLE, written.manifest)
    manifest = json.loads(written.manifest)
    assert manifest["format_version"] == 2 and "network" not in manifest["net_positions"]
    assert [row.split(",")[2] for row in summary_rows(old)] == sorted([coffee, book]) + [""]
    assert network.tx(lambda tx: verify_directory(tx, old, keys(network)), readonly=True) == []
    # a version 2 directory is still checked: the network's row added to it is found
    summary = old / "network-summary.csv"
    lines = summary.read_text().splitlines(keepends=True)
    summary.write_text("".join(lines[:1] + ["D,2026-11-20,network,0,0,0,2026-11-23,,\n"] + lines[1:]))
    findings = network.tx(lambda tx: verify_directory(tx, old, keys(network)), readonly=True)
    assert {(f.check, f.subject) for f in findings} >= {("digest", "network-summary.csv"),
                                                         ("recomputation", "network-summary.csv")}
