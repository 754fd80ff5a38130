"""Every index on the posting path's tables holds what some path reads (migration 0026).

Each index entry is written by every posting. The indexes on an entry's original entry and hold
and on a line's original line hold only the rows that point at something (most rows point at
nothing); the prepaid-funding index holds only prepaid-funding lines; transfers carry no index on
their accounts. These tests run the paths that read them — a reversal, a hold's resolutions in
verify, a partner's float summed from its lines — capture the statements they send and check the
plan still goes through the index; and count what an earn writes into each index.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from shared.ledger.verify import CHECKS
from shared.partners import limits
from tests.db.test_history_plans import analyzed, captured, is_postgres, only_plan, plan, with_a_past
from tests.factories import make_member, make_partner


def test_a_reversal_finds_earlier_reversals_and_reversed_lines_through_the_partial_indexes(network):
    partner = make_partner(network, "ptn_rev", issuance_fee="0.05")  # each earn pays a fee line
    member = make_member(network, partner)
    for n in range(60):  # reversals of many earns: the selective index is the one to take
        network.earn(partner, member, f"e{n}", points=100)
        network.reverse(partner, f"r{n}", f"e{n}", 30)
    analyzed(network, "entries", "obligation_lines")
    with captured(network, "original_entry_id IN") as reversals, captured(network, "original_line_id IN") as lines:
        network.reverse(partner, "again", "e0", 20)
    assert "ix_entries_original_entry_id_set" in only_plan(network, reversals)
    assert "ix_obligation_lines_original_line_id_set" in only_plan(network, lines)


def test_a_partners_float_is_summed_from_its_prepaid_funding_lines_only(network, clock):
    with_a_past(network, clock)
    partner = make_partner(network, "ptn_pre")
    analyzed(network, "obligation_lines")
    with captured(network, "prepaid_funding") as sent:
        network.tx(lambda tx: limits._summed_drawn(tx, partner), readonly=True)
    # the kind is written into the statement: a prepared statement's generic plan could not prove
    # the partial index's condition from a bound parameter
    assert "kind = 'prepaid_funding'" in sent[0][0]
    assert "ix_obligation_lines_prepaid_funding" in only_plan(network, sent)


def test_verify_finds_a_holds_resolutions_through_the_hold_index(network, clock):
    with_a_past(network, clock)
    analyzed(network, "holds", "entries")
    found = plan(network, CHECKS["hold_resolved_once"][1], {} if is_postgres(network) else ())
    assert "ix_entries_hold_id_set" in found, found


PARTIAL = {"ix_entries_original_entry_id_set": "original_entry_id IS NOT NULL",
           "ix_entries_hold_id_set": "hold_id IS NOT NULL",
           "ix_obligation_lines_original_line_id_set": "original_line_id IS NOT NULL",
           "ix_obligation_lines_prepaid_funding": "kind = 'prepaid_funding'"}
DROPPED = ("ix_transfers_debit_account", "ix_transfers_credit_account", "ix_obligation_lines_payer_kind",
           "ix_entries_original_entry_id", "ix_entries_hold_id", "ix_obligation_lines_original_line_id")


def index_definitions(network) -> dict[str, str]:
    query = ("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
             if is_postgres(network) else "SELECT name, sql FROM sqlite_master WHERE type = 'index'")
    return {name: definition or "" for name, definition in
            network.tx(lambda tx: tx.session.execute(text(query)).all(), readonly=True)}


def test_the_indexes_on_pointers_hold_only_the_rows_that_point(network):
    definitions = index_definitions(network)
    for name, predicate in PARTIAL.items():
        written = definitions[name].replace("(", "").replace(")", "").replace("::text", "")
        assert f"WHERE {predicate}" in written, definitions[name]
    assert not set(DROPPED) & set(definitions)


@pytest.mark.postgres
def test_an_earn_writes_no_index_entry_for_what_it_does_not_point_at(network):
    """The partial indexes gain a row with a reversal, not with an earn (the indexes' own row counts)."""
    partner = make_partner(network, "ptn_cnt")
    member = make_member(network, partner)
    for n in range(5):
        network.earn(partner, member, f"e{n}", points=10)
    network.reverse(partner, "r1", "e0")
    network.tx(lambda tx: tx.session.execute(text("ANALYZE entries")))
    sizes = dict(network.tx(lambda tx: tx.session.execute(text(
        "SELECT relname, reltuples FROM pg_class WHERE relname IN "
        "('ix_entries_original_entry_id_set', 'ix_entries_hold_id_set', 'pk_entries')")).all(), readonly=True))
    assert sizes == {"ix_entries_original_entry_id_set": 1, "ix_entries_hold_id_set": 0, "pk_entries": 6}, sizes
