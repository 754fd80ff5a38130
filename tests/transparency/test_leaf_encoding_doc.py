"""The leaf encoding as docs/verifiable-ledger.md tells an auditor to re-implement it: the guide's
example is the very bytes (and leaf hash) the network seals for that entry."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from pathlib import Path

from shared.transparency.encoding import encode_entries, encode_entry
from shared.transparency.merkle import leaf_hash
from tests.factories import make_member, make_partner

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "verifiable-ledger.md"
AT = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)
PARTNER, MEMBER = "ptn_01a248ad65f2131810c985b623c5", "mem_01a248ad66184075aa847fae940f"
CONTRACT, LOT = "ctr_01a248ad65f4e5e066db83bd30e1", "lot_01a248ad664b51f609b2d9b37555"


def _guide_example() -> tuple[bytes, str]:
    """The example's code block, as bytes (every line ends with a newline), and the leaf hash stated under it."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text[text.index("Example: the exact leaf data"):]
    block = re.search(r"```\n(.*?)```", section, re.S).group(1)
    stated = re.search(r"leaf hash is `([0-9a-f]{64})`", section).group(1)
    return block.encode("utf-8"), stated


def test_the_guides_example_is_the_encoding_of_its_entry():
    entry = {"id": "ent_01a248ad664b7650e3b6ff542a71", "kind": "earn", "partner_id": PARTNER, "member_id": MEMBER,
             "reference": "coffee-1", "points": 500, "cycle_date": date(2026, 11, 20), "posted_at": AT,
             "occurred_at": AT, "original_entry_id": None, "hold_id": None}
    transfers = [{"id": "trf_01a248ad664b31d9d6b908ea4596", "debit_account": f"partner:{PARTNER}:issued",
                  "credit_account": f"member:{MEMBER}", "points": 500}]
    lots = [{"id": LOT, "member_id": MEMBER, "funder_partner_id": PARTNER, "billing": "postpaid",
             "contract_id": CONTRACT, "points": 500, "issued_at": AT}]
    lines = [{"id": "obl_01a248ad664bce3cdead86863235", "cycle_date": date(2026, 11, 20), "payer": PARTNER,
              "payee": "network", "kind": "issuance_fee", "points": 500, "amount_micro": 50_000_000,
              "contract_id": CONTRACT, "lot_id": LOT, "original_line_id": None}]
    documented, stated = _guide_example()

    encoded = encode_entry(entry, transfers, [], lots, lines)
    assert encoded == documented  # a NULL is a bare "-": the E record ends "--", the O record "-"
    assert leaf_hash(encoded).hex() == stated


def test_the_guides_example_has_the_shape_of_what_the_network_seals(network):
    """The same earn made on a network (its own ids): record for record, the guide's bytes with the ids swapped."""
    coffee = make_partner(network, "CoffeeCo", billing="postpaid", point_value="1", issuance_fee="0.1",
                          redemption_fee_rate="0.05")
    entry_id = network.earn(coffee, make_member(network, coffee), "coffee-1", points=500)["entry_id"]
    sealed = network.tx(lambda tx: encode_entries(tx, [entry_id]), readonly=True)[entry_id]
    ids = re.compile(rb"(ent|ptn|mem|trf|lot|ctr|obl)_[0-9a-f]{28}")
    documented, _ = _guide_example()
    assert ids.sub(rb"\1_id", sealed) == ids.sub(rb"\1_id", documented)
