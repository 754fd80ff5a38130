"""``pointsnet verify``: every ledger invariant checked over the whole database, set-based.

Each check is one aggregate query that returns only offenders, so it scales with
the database's own scan speed rather than with Python loops.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, text

from shared.db.database import Tx
from shared.db.snapshot import run_in_snapshot

# Every account's balance: the sum of its postings.
_BALANCES = """
        SELECT account, SUM(points) AS balance FROM (
            SELECT credit_account AS account, points FROM transfers
            UNION ALL SELECT debit_account, -points FROM transfers) t
        GROUP BY account"""
# Members whose stored balance column differs from the sum of postings to their account.
_POSTED = """
    SELECT m.id, 'stored ' || m.{column} || ' postings ' || COALESCE(p.balance, 0)
    FROM members m LEFT JOIN {balances} p ON p.account = 'member:' || m.id{suffix}
    WHERE m.{column} <> COALESCE(p.balance, 0)
"""
_AVAILABLE, _HELD = {"column": "available", "suffix": ""}, {"column": "held", "suffix": " || '\\:held'"}

# name -> (what must hold, SQL returning offending (subject, detail) rows)
CHECKS: dict[str, tuple[str, str]] = {
    "member_available_matches_postings": (
        "a member's available balance equals the sum of postings to member:<id>",
        _POSTED.format(**_AVAILABLE, balances=f"({_BALANCES})"),
    ),
    "member_held_matches_postings": (
        "a member's held balance equals the sum of postings to member:<id>:held",
        _POSTED.format(**_HELD, balances=f"({_BALANCES})"),
    ),
    "member_balance_matches_lots": (
        "available + held equals the remaining points of the member's lots; held equals their reserved points",
        """
        SELECT m.id, 'available+held ' || (m.available + m.held) || ' lots ' || COALESCE(l.remaining, 0)
               || ' held ' || m.held || ' reserved ' || COALESCE(l.reserved, 0)
        FROM members m LEFT JOIN (
            SELECT member_id, SUM(remaining) AS remaining, SUM(reserved) AS reserved FROM lots GROUP BY member_id
        ) l ON l.member_id = m.id
        WHERE m.available + m.held <> COALESCE(l.remaining, 0) OR m.held <> COALESCE(l.reserved, 0)
        """,
    ),
    "campaign_total_matches_awards": (
        "a campaign's stored total equals the sum of its awards",
        """
        SELECT t.campaign, 'total ' || t.points || ' awards ' || COALESCE(a.points, 0)
        FROM campaign_totals t LEFT JOIN (
            SELECT campaign, SUM(points) AS points FROM campaign_awards GROUP BY campaign
        ) a ON a.campaign = t.campaign
        WHERE t.points <> COALESCE(a.points, 0)
        """,
    ),
    "float_drawn_matches_lines": (
        "a partner's kept float drawn equals the sum of its prepaid_funding lines",
        """
        SELECT p.partner_id, 'kept ' || p.float_drawn_micro || ' lines ' || COALESCE(l.amount, 0)
        FROM partner_limits p LEFT JOIN (
            SELECT payer, SUM(amount_micro) AS amount FROM obligation_lines WHERE kind = 'prepaid_funding'
            GROUP BY payer
        ) l ON l.payer = p.partner_id
        WHERE p.float_drawn_micro IS NOT NULL AND p.float_drawn_micro <> COALESCE(l.amount, 0)
        """,
    ),
    "float_opened_matches_lines": (
        "a float's lines that are not the float's (float_opened_micro) are the partner's prepaid_funding lines "
        "of the cycles before the one it was enforced in that no settlement took from the float or credited "
        "it for (docs/ledger.md, decision 14)",
        """
        SELECT p.partner_id, 'opened ' || COALESCE(CAST(p.float_opened_cycle AS TEXT), '-') || ' kept '
               || p.float_opened_micro || ' lines ' || COALESCE(l.amount, 0)
        FROM partner_limits p LEFT JOIN (
            SELECT o.payer, SUM(o.amount_micro) AS amount
            FROM obligation_lines o JOIN partner_limits q ON q.partner_id = o.payer
            WHERE o.kind = 'prepaid_funding' AND q.float_opened_cycle IS NOT NULL
              AND o.cycle_date < q.float_opened_cycle
              AND NOT EXISTS (SELECT 1 FROM settlements s WHERE s.cycle_date = o.cycle_date AND s.party = o.payer
                              AND (s.from_float_minor <> 0 OR s.float_rounding_micro <> 0))
              AND NOT EXISTS (SELECT 1 FROM float_topups t WHERE t.partner_id = o.payer
                              AND t.bank_reference = 'settlement:' || CAST(o.cycle_date AS TEXT))
            GROUP BY o.payer
        ) l ON l.payer = p.partner_id
        WHERE p.float_opened_micro <> COALESCE(l.amount, 0)
        """,
    ),
    "float_rounding_matches_lines": (
        "a settlement's rounding credit to a float is the cycle's prepaid_funding lines of the partner less "
        "their sum rounded half-even to minor units (what its statement settled): every settlement with a "
        "credit, and every settlement of a partner whose float is enforced of a cycle from the one it was "
        "enforced in (settled from the float: a missing credit is found too)",
        # per settlement with a credit or of an enforced float (few), through ix_obligation_lines_prepaid_funding;
        # at most half a minor unit, leaving whole minor units, an even number of them where it is a half
        """
        SELECT r.party || ' ' || CAST(r.cycle_date AS TEXT), 'rounding ' || r.rounding || ' lines ' || r.amount
        FROM (SELECT s.party, s.cycle_date, s.float_rounding_micro AS rounding,
                     COALESCE((SELECT SUM(o.amount_micro) FROM obligation_lines o WHERE o.kind = 'prepaid_funding'
                               AND o.payer = s.party AND o.cycle_date = s.cycle_date), 0) AS amount
              FROM settlements s WHERE s.float_rounding_micro <> 0 OR EXISTS (
                  SELECT 1 FROM partner_limits p WHERE p.partner_id = s.party AND p.float_overdraft_minor IS NOT NULL
                  AND (p.float_opened_cycle IS NULL OR s.cycle_date >= p.float_opened_cycle))) r
        WHERE r.rounding > 500000 OR r.rounding < -500000 OR (r.amount - r.rounding) % 1000000 <> 0
           OR (r.rounding IN (500000, -500000) AND ((r.amount - r.rounding) / 1000000) % 2 <> 0)
        """,
    ),
    "negative_balance": (
        "no member's available or held balance is negative",
        "SELECT id, 'available ' || available || ' held ' || held FROM members WHERE available < 0 OR held < 0",
    ),
    "lot_remaining_matches_consumptions": (
        "a lot's remaining points equal its points less its consumptions (returns counted back)",
        """
        SELECT l.id, 'remaining ' || l.remaining || ' expected ' || (l.points - COALESCE(c.taken, 0))
        FROM lots l LEFT JOIN (SELECT lot_id, SUM(points) AS taken FROM lot_consumptions GROUP BY lot_id) c
          ON c.lot_id = l.id
        WHERE l.remaining <> l.points - COALESCE(c.taken, 0)
        """,
    ),
    "lot_reserved_matches_open_holds": (
        "a lot's reserved points equal what open holds reserve from it",
        """
        SELECT l.id, 'reserved ' || l.reserved || ' open holds ' || COALESCE(h.points, 0)
        FROM lots l LEFT JOIN (
            SELECT hl.lot_id, SUM(hl.points) AS points FROM hold_lots hl JOIN holds h ON h.id = hl.hold_id
            WHERE h.status = 'open' GROUP BY hl.lot_id) h ON h.lot_id = l.id
        WHERE l.reserved <> COALESCE(h.points, 0)
        """,
    ),
    "hold_resolved_once": (
        "a hold is resolved by exactly one entry, of the matching kind, that names it",
        """
        SELECT h.id, 'status ' || h.status || ' resolving entries ' || COUNT(e.id)
        FROM holds h LEFT JOIN entries e ON e.hold_id = h.id AND e.kind IN ('capture', 'void', 'hold_expiry')
        GROUP BY h.id, h.status
        HAVING (h.status = 'open' AND COUNT(e.id) <> 0) OR (h.status <> 'open' AND COUNT(e.id) <> 1)
        """,
    ),
    "reversal_within_original": (
        "reversals of an entry never exceed its points",
        """
        SELECT o.id, 'original ' || o.points || ' reversed ' || SUM(r.points)
        FROM entries o JOIN entries r ON r.original_entry_id = o.id AND r.kind = 'reversal'
        GROUP BY o.id, o.points HAVING SUM(r.points) > o.points
        """,
    ),
    "entry_has_postings": (
        "every entry has at least one transfer",
        """
        SELECT e.id, e.kind FROM entries e
        WHERE NOT EXISTS (SELECT 1 FROM transfers t WHERE t.entry_id = e.id)
        """,
    ),
    "no_entry_in_closed_cycle": (
        "no entry was posted into a cycle after it closed",
        """
        SELECT e.id, 'cycle ' || e.cycle_date FROM entries e JOIN cycles c ON c.cycle_date = e.cycle_date
        WHERE c.status = 'closed' AND e.posted_at > c.closed_at
        """,
    ),
    "line_in_entry_cycle": (
        "an obligation line belongs to the cycle of its entry",
        """
        SELECT o.id, 'line cycle ' || o.cycle_date || ' entry cycle ' || e.cycle_date
        FROM obligation_lines o JOIN entries e ON e.id = o.entry_id WHERE o.cycle_date <> e.cycle_date
        """,
    ),
    "line_reversal_within_original": (
        "reversal lines of a line never exceed it",
        """
        SELECT o.id, 'original ' || o.amount_micro || ' reversed ' || -SUM(r.amount_micro)
        FROM obligation_lines o JOIN obligation_lines r ON r.original_line_id = o.id
        GROUP BY o.id, o.amount_micro, o.points
        HAVING ABS(SUM(r.amount_micro)) > ABS(o.amount_micro) OR -SUM(r.points) > o.points
        """,
    ),
    "lot_holder_follows_merges": (
        "a lot is held by the member it was issued to, or, once a merge moved it (merged_from), by the member "
        "that member was merged into; no lot is held by a merged member",
        # the leaf names the member a lot was issued to (merged_from once moved), so who holds it now is
        # checked here: through the partial index of moved lots and the index of merged members
        """
        SELECT l.id, 'held by ' || l.member_id || ' issued to ' || l.merged_from
               || ' merged into ' || COALESCE(m.merged_into, '-')
        FROM lots l LEFT JOIN members m ON m.id = l.merged_from
        WHERE l.merged_from IS NOT NULL AND (m.merged_into IS NULL OR m.merged_into <> l.member_id)
        UNION ALL
        SELECT l.id, 'held by ' || l.member_id || ', merged into ' || m.merged_into
        FROM members m JOIN lots l ON l.member_id = m.id
        WHERE m.merged_into IS NOT NULL
        """,
    ),
    "cycle_position_matches_entries": (
        "a settled cycle's kept ledger position counts the entries of the cycle and through it, and its last id "
        "names an entry of a cycle up to it",
        # counted per cycle through the cycle index alone (an index-only scan on PostgreSQL): reading every
        # entry row for the largest id cost a full verify 15-30 s more at 10 million entries; that the
        # last id is the largest is what `pointsnet reconcile` recounts for each manifest
        """
        SELECT p.cycle_date, 'kept ' || p.entries_in_cycle || ' / ' || p.entries_through_cycle || ' counted '
               || c.in_cycle || ' / ' || c.through || ' last ' || COALESCE(p.last_transaction_id, '-')
               || ' of cycle ' || COALESCE(CAST(l.cycle_date AS TEXT), '-')
        FROM cycle_positions p JOIN (
            SELECT y.cycle_date, COALESCE(n.entries, 0) AS in_cycle,
                   SUM(COALESCE(n.entries, 0)) OVER (ORDER BY y.cycle_date) AS through
            FROM cycles y LEFT JOIN (SELECT cycle_date, COUNT(*) AS entries FROM entries GROUP BY cycle_date) n
              ON n.cycle_date = y.cycle_date
        ) c ON c.cycle_date = p.cycle_date
        LEFT JOIN entries l ON l.id = p.last_transaction_id
        WHERE p.entries_in_cycle <> c.in_cycle OR p.entries_through_cycle <> c.through
           OR (p.last_transaction_id IS NULL AND c.through <> 0)
           OR (p.last_transaction_id IS NOT NULL AND (l.id IS NULL OR l.cycle_date > p.cycle_date))
        """,
    ),
}


# SQLite's integer SUM fails ("integer overflow") once its running sum passes 2^63, even where the
# total fits: a float's signed prepaid_funding lines (reversals post negative ones) can pass it on the
# way to a kept total that fits. There the float check sums each line's high and low 32-bit halves
# (as shared.reports.sql.exact_sum; neither sum can overflow below 2^31 lines) and compares exactly:
# lines H * 2^32 + L equal kept K * 2^32 + k (its own halves) when L - k is K - H times 2^32. The
# detail's sum is made in Python. PostgreSQL sums a bigint exactly (numeric): CHECKS' query.
_HALF = 2**32
_EXACT_ON_SQLITE = {
    "float_drawn_matches_lines": f"""
        SELECT p.partner_id, p.float_drawn_micro, COALESCE(l.high, 0), COALESCE(l.low, 0)
        FROM partner_limits p LEFT JOIN (
            SELECT payer, SUM(amount_micro / {_HALF}) AS high, SUM(amount_micro % {_HALF}) AS low
            FROM obligation_lines WHERE kind = 'prepaid_funding' GROUP BY payer
        ) l ON l.payer = p.partner_id
        WHERE p.float_drawn_micro IS NOT NULL
          AND ((COALESCE(l.low, 0) - p.float_drawn_micro % {_HALF}) % {_HALF} <> 0
               OR (COALESCE(l.low, 0) - p.float_drawn_micro % {_HALF}) / {_HALF}
                  <> p.float_drawn_micro / {_HALF} - COALESCE(l.high, 0))
        """,
}


@dataclass(frozen=True)
class Offence:
    check: str
    subject: str
    detail: str


@dataclass
class VerifyReport:
    counts: dict[str, int]
    offences: list[Offence]

    @property
    def ok(self) -> bool:
        return not self.offences


# The sealed tree (shared/transparency/audit.py): name -> what must hold.
TREE_CHECKS: dict[str, str] = {
    "leaf_hash_mismatch": "every sealed entry, with its postings, lot consumptions and obligation lines, "
                          "still encodes to its leaf",
    "sealed_entry_missing": "no sealed entry was deleted",
    "leaf_missing": "the tree's leaves are contiguous",
    "entry_not_sealed": "every entry of a sealed cycle is in the tree",
    "checkpoint_signature": "every stored checkpoint carries a valid network signature",
    "checkpoint_origin": "every stored checkpoint is signed under an origin the network signed under",
    "checkpoint_root_mismatch": "the recomputed tree gives every signed checkpoint's root",
    "stored_tree_mismatch": "the stored subtrees that answer proofs agree with the leaves",
    # beside the tree, listed here so every report shows it (shared/settlement/runs.py)
    "settlement_directory_missing": "every settled cycle's directory is in the data directory",
    "settlement_manifest_signature": "every settled cycle's manifest carries the network's signature",
    "settlement_manifest_checkpoint": "every settled cycle's manifest carries one of the stored signed checkpoints",
    "settlement_manifest_replaced": "every settled cycle's manifest is the one its settlement run wrote",
}


COUNTED = ("entries", "transfers", "lots", "lot_consumptions", "obligation_lines", "holds", "members",
           "ledger_leaves", "checkpoints")
# Both posting checks sum the same postings per account: run together, the sum is made once.
_PAIRED = ("member_available_matches_postings", "member_held_matches_postings")


def _offenders(names: tuple[str, ...], limit: int, connection: Connection) -> list[Offence]:
    if names == _PAIRED:  # both posting checks over one sum of the postings
        both = " UNION ALL ".join(
            f"SELECT * FROM (SELECT '{name}', s.* FROM ({_POSTED.format(**columns, balances='posted')}) s "
            f"LIMIT {limit}) q{n}" for n, (name, columns) in enumerate(zip(_PAIRED, (_AVAILABLE, _HELD))))
        return [Offence(*map(str, row)) for row in connection.execute(text(
            f"WITH posted AS MATERIALIZED ({_BALANCES}) {both}"))]
    (name,) = names
    if name in _EXACT_ON_SQLITE and connection.dialect.name == "sqlite":
        return [Offence(name, str(subject), f"kept {kept} lines {high * _HALF + low}")
                for subject, kept, high, low in connection.execute(text(f"{_EXACT_ON_SQLITE[name]} LIMIT {limit}"))]
    return [Offence(name, str(row[0]), str(row[1]))
            for row in connection.execute(text(f"{CHECKS[name][1]} LIMIT {limit}"))]


def _counts(connection: Connection) -> dict[str, int]:
    rows = connection.execute(text(" UNION ALL ".join(f"SELECT '{table}', COUNT(*) FROM {table}" for table in COUNTED)))
    return {table: int(count) for table, count in rows}


def verify(tx: Tx, *, limit_per_check: int = 100, public_key: Ed25519PublicKey | None = None,
           workers: int = 1) -> VerifyReport:
    """Every invariant; with the network's public key, the checkpoints' signatures too.

    On PostgreSQL the checks are independent read-only queries: with ``workers`` > 1 they run on
    that many connections side by side, all in this unit's snapshot (shared/db/snapshot.py), so
    the report is the one a single connection would give, sooner on a database with several cores.
    """
    from shared.transparency.audit import SQL_SETTINGS, TreeProof, audit

    limit = int(limit_per_check)
    proof = TreeProof(tx, slices=4 * workers if workers > 1 else 1) if tx.is_postgres else None
    tree_jobs = proof.jobs() if proof else []
    groups = [_PAIRED] + [(name,) for name in CHECKS if name not in _PAIRED]
    jobs = [*tree_jobs, *(partial(_offenders, names, limit) for names in groups), _counts]
    results = run_in_snapshot(tx, jobs, workers, settings=SQL_SETTINGS if tx.is_postgres else ())
    found = {name: [] for name in CHECKS}
    for offences in results[len(tree_jobs):-1]:
        for offence in offences:
            found[offence.check].append(offence)
    offences = [offence for name in CHECKS for offence in found[name]]
    proven = partial(proof.holds, tx, results[:len(tree_jobs)]) if proof else None
    offences.extend(Offence(*finding) for finding in audit(tx, public_key, limit=limit, proven=proven))
    from shared.settlement.runs import directories_ahead, missing_directories  # settlement builds on the ledger
    from shared.settlement.signed_manifests import manifest_offences

    offences.extend(Offence(*finding) for finding in missing_directories(tx, limit))
    offences.extend(Offence(*finding) for finding in directories_ahead(tx, limit))
    from shared.reports.delivery import sets_ahead

    offences.extend(Offence(*finding) for finding in sets_ahead(tx, limit))
    offences.extend(Offence(*finding) for finding in manifest_offences(tx, public_key, limit))
    return VerifyReport(results[-1], offences)

