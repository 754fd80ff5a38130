"""Expiry on PostgreSQL: the lots' side of an expiry batch done in SQL, the members' side in Python.

The generic path (``expiry.forfeit``) reads every due lot into a ``LotState``, then writes one
lot update and one lot consumption per lot from Python. At a million lots that reading and
row building is most of the job's cost. Here one read returns, per locked member, only its due
lots' ids in consumption order and their free points; Python builds the per-member rows exactly
as ``forfeit`` does (the ``expiry`` entry and its result, the transfer, the member's balance,
the webhook event, and the breakage lines of prepaid lots through ``rules.breakage_lines``);
then one statement empties the due lots and writes their consumptions from the same rows
(``UPDATE`` and ``INSERT … SELECT`` in one snapshot), and is checked against the read.

The rows are the same as the generic path's (tests/ledger/test_expiry_pg.py compares them).
Callers hold the members' row locks: every change to a lot happens under its member's lock,
so the lots read here cannot move before the write.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, text

from shared.db.lists import pg_array
from shared.db.types import UTCDateTime, new_ids
from shared.ledger.journal import Journal
from shared.ledger.rules import LotState, breakage_lines
from shared.partners.contracts import terms_by_id

# What expiry takes: the lots with free points whose expiry has come (as ``load_due_lots``), member by
# member (a lateral index scan of ix_lots_member_order each, fenced by OFFSET 0 so that no estimate of the
# members' share of all lots can turn it into a scan of every open lot or of the whole table).
_DUE_LOTS = (
    "unnest(CAST(:members AS text[])) AS m(id) CROSS JOIN LATERAL ("
    "SELECT ctid AS tid, id, member_id, expires_at, issued_at, billing, funder_partner_id, contract_id, "
    "remaining - reserved AS free FROM lots "
    "WHERE member_id = m.id AND remaining > 0 AND expires_at <= :now AND remaining > reserved OFFSET 0) AS due"
)
# Consumption order as ``rules.consumption_key``: expiry, then issue, then id compared as Python
# compares strings (code points: the "C" collation of UTF-8), whatever the database's collation.
_ORDER = 'due.expires_at, due.issued_at, due.id COLLATE "C"'
_PREPAID = "FILTER (WHERE due.billing = 'prepaid')"

_READ = text(
    f"SELECT due.member_id, array_agg(due.id ORDER BY {_ORDER}) AS lot_ids, SUM(due.free) AS points, "
    # prepaid lots are the only ones with breakage money: their details, in the same order
    f"array_agg(due.id ORDER BY {_ORDER}) {_PREPAID} AS prepaid_ids, "
    f"array_agg(due.free ORDER BY {_ORDER}) {_PREPAID} AS prepaid_free, "
    f"array_agg(due.funder_partner_id ORDER BY {_ORDER}) {_PREPAID} AS prepaid_funders, "
    f"array_agg(due.contract_id ORDER BY {_ORDER}) {_PREPAID} AS prepaid_contracts "
    f"FROM {_DUE_LOTS} GROUP BY due.member_id"
).bindparams(bindparam("now", type_=UTCDateTime()))

# One snapshot for all three parts: the UPDATE finds the very row versions ``due`` read (by ctid),
# and the consumptions take what those versions had free. The UPDATE also sets the columns of the
# lots' btree indexes to themselves (no value changes): an UPDATE that names none of an index's
# columns hints the index that its key is unchanged, and a full leaf page then first tries a
# "bottom-up deletion" of older versions of the same rows; here those versions are this
# transaction's own, never deletable yet, and the futile pass cost about a tenth of the statement.
# The rows written are the same; foreign keys are not checked again (their values do not change).
_WRITE = text(
    "WITH due AS ("
    f"  SELECT due.tid, due.id, due.member_id, due.free, "
    f"         row_number() OVER (PARTITION BY due.member_id ORDER BY {_ORDER}) AS seq, "
    "          row_number() OVER () AS n "
    f"  FROM {_DUE_LOTS}"
    "), taken AS ("
    "  UPDATE lots SET remaining = reserved, id = id, member_id = member_id, entry_id = entry_id WHERE ctid = ANY(ARRAY(SELECT tid FROM due)) RETURNING 1"
    "), written AS ("
    "  INSERT INTO lot_consumptions (id, entry_id, lot_id, seq, points) "
    "  SELECT c.id, e.entry_id, due.id, due.seq, due.free "
    "  FROM due JOIN unnest(CAST(:members AS text[]), CAST(:entries AS text[])) AS e(member_id, entry_id) "
    "    ON e.member_id = due.member_id "
    "  JOIN unnest(CAST(:ids AS text[])) WITH ORDINALITY AS c(id, n) ON c.n = due.n "
    "  RETURNING points"
    ") SELECT (SELECT COUNT(*) FROM taken) AS taken, (SELECT COUNT(*) FROM written) AS written, "
    "(SELECT COALESCE(SUM(points), 0) FROM written) AS points"
).bindparams(bindparam("now", type_=UTCDateTime()))


def expire_locked(journal: Journal, now: datetime) -> int:
    """Expire the due lots of ``journal.members`` (locked by the caller); returns the points expired.

    Writes the journal (``flush``) itself: the consumptions name the entries, so the entries go first."""
    tx = journal.tx
    members = pg_array(sorted(journal.members))
    due = {row.member_id: row for row in tx.session.execute(_READ, {"members": members, "now": now})}
    if not due:
        return 0
    contracts = {c for row in due.values() for c in row.prepaid_contracts or ()}
    terms = terms_by_id(tx, contracts)
    entries: dict[str, str] = {}
    lots = expired = 0
    for member_id in sorted(due):
        row, member = due[member_id], journal.members[member_id]
        total = int(row.points)
        entry = journal.entry("expiry", total, member_id=member_id)
        entries[member_id] = entry["id"]
        for lot_id, free, funder, contract in zip(row.prepaid_ids or (), row.prepaid_free or (),
                                                  row.prepaid_funders or (), row.prepaid_contracts or ()):
            # what breakage_lines reads of a lot: its id, funder, billing and contract
            lot = LotState(lot_id, member_id, "", funder, "prepaid", contract, free, free, 0, now, now)
            for line in breakage_lines(lot, free, terms.get(contract)):
                journal.line(entry, line)
        journal.transfer(entry, f"member:{member_id}", "network:expired", total)
        member.change(available=-total)
        entry["result"] = {"entry_id": entry["id"], "kind": "expiry", "member_id": member_id, "points": total,
                           "lots": row.lot_ids, "balance": member.balance()}
        lots += len(row.lot_ids)
        expired += total
    journal.flush()
    written = tx.session.execute(_WRITE, {  # the same members as the read found, with their entries
        "members": pg_array(sorted(entries)), "now": now, "entries": pg_array(entries[m] for m in sorted(entries)),
        "ids": "{" + ",".join(new_ids("lc", lots)) + "}",  # letters, digits and "_": nothing to quote
    }).one()
    # The write ran the read's query again under the same locks: anything else is a bug, and rolls back.
    if written.taken != lots or written.written != lots or written.points != expired:
        raise AssertionError(f"expiry wrote {written.written} consumptions of {written.points} points over "
                             f"{written.taken} lots; read {lots} lots of {expired} points")
    return expired
