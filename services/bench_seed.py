"""A set-based seeder of ledger-shaped rows for ``pointsnet bench settle``: millions of obligation lines fast.

Posting 10 million obligation lines through the batch path would take longer than what it
prepares, so the settle scenario writes the cycle with ``INSERT … SELECT`` over a number
series, a few statements per table and chunk. The rows are those the posting path writes
for the same traffic, consistent by construction so that every balance check of ``pointsnet
verify`` holds:

* earn ``e`` (partner ``p = e mod P``, member ``e mod M``): one entry, one transfer
  ``partner:p:issued → member``, ``LOTS_PER_ENTRY`` lots of ``POINTS_PER_LOT`` points, and per lot an
  ``issuance_fee`` line (and a ``prepaid_funding`` line when ``p`` is prepaid);
* burn ``e`` at another partner ``q``: one entry, one transfer ``member → partner:q:redeemed``, one
  consumption of each of earn ``e``'s lots (so every member ends at zero), and per lot a
  ``redemption`` line (payer ``p`` if postpaid, else the network) and a ``redemption_fee`` line.

Amounts follow the partners' contract terms (the scenario gives every partner the same values:
1 fen a point, 0.1 fen issuance fee, 5 % redemption fee). On PostgreSQL, as a superuser, the seeding
runs with ``session_replication_role = replica`` (foreign-key triggers off: the bench database is fresh
and the rows reference only rows written before them); CHECK and UNIQUE constraints still apply.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from sqlalchemy import bindparam, text

from shared.db.types import UTCDateTime
from shared.ledger.cycles import enter_open_cycle
from shared.network import Network

LOTS_PER_ENTRY = 10
POINTS_PER_LOT = 10
POINT_VALUE_MICRO = 1_000_000  # 1 fen
ISSUANCE_FEE_MICRO = 100_000  # 0.1 fen a point
REDEMPTION_FEE_PPM = 50_000  # 5 %
# lines per lot: issuance fee, prepaid funding (prepaid funders only), redemption, redemption fee
LINES_PER_LOT = 3.5


@dataclass(frozen=True)
class Seeded:
    entries: int
    lots: int
    lines: int
    members: int
    partners: int


def _series(dialect: str, name: str) -> str:
    """The integers lo … hi-1 as ``g.<name>``."""
    if dialect == "postgresql":
        return f"generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint) - 1) AS g({name})"
    return (f"(WITH RECURSIVE s({name}) AS (SELECT :lo UNION ALL SELECT {name} + 1 FROM s WHERE {name} < :hi - 1) "
            f"SELECT {name} FROM s) AS g")


def _hex(dialect: str, expr: str) -> str:
    if dialect == "postgresql":
        return f"lpad(to_hex(CAST({expr} AS bigint)), 16, '0')"
    return f"printf('%016x', {expr})"


def seed_cycle(network: Network, partner_ids: list[str], *, lines: int, members: int,
               on_progress: Callable[[int], None] | None = None, chunk_entries: int = 20_000) -> Seeded:
    """Write about ``lines`` obligation lines into the open cycle, spread over ``partner_ids``."""
    if len(partner_ids) < 2:
        raise ValueError("the seeder needs at least two partners (burns redeem at another partner)")
    dialect = network.db.dialect
    earns = max(1, round(lines / LINES_PER_LOT / LOTS_PER_ENTRY))
    members = max(1, min(members, earns))
    now: datetime = network.clock.now()
    cycle = network.tx(lambda tx: enter_open_cycle(tx))
    stamp = f"{time.time_ns() // 1_000_000:012x}"
    series, lot_series, h = _series(dialect, "i"), _series(dialect, "j"), (lambda expr: _hex(dialect, expr))
    n, k, pts = len(partner_ids), LOTS_PER_ENTRY, POINTS_PER_LOT

    with network.db.engine.connect() as conn:
        try:
            def run(sql: str, **params) -> None:
                statement = text(sql).bindparams(*(bindparam(name, type_=UTCDateTime())
                                                   for name in ("now", "expires") if f":{name}" in sql))
                conn.execute(statement, {"stamp": stamp, "cycle": cycle, "now": now,
                                         "expires": network.settings.lot_expiry(now), **params})

            replica = dialect == "postgresql" and conn.execute(text(
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar_one()
            if replica:  # only a superuser may switch the foreign-key triggers off; others seed with them on
                conn.execute(text("SET session_replication_role = replica"))
            conn.execute(text("CREATE TEMP TABLE bench_partners (n INTEGER PRIMARY KEY, id TEXT, contract_id TEXT, "
                              "billing TEXT)"))
            conn.execute(text("INSERT INTO bench_partners (n, id, contract_id, billing) "
                              "SELECT :n, p.id, c.id, c.billing FROM partners p "
                              "JOIN contracts c ON c.partner_id = p.id WHERE p.id = :id"),
                         [{"n": i, "id": pid} for i, pid in enumerate(partner_ids)])
            mem = f"'mem_seed' || {h('g.i')}"
            for lo in range(0, members, 50_000):
                hi = min(members, lo + 50_000)
                run(f"INSERT INTO members (id, status, available, held, created_at) "
                    f"SELECT {mem}, 'active', 0, 0, :now FROM {series}", lo=lo, hi=hi)
                run(f"INSERT INTO accounts (id, kind) SELECT 'member:' || {mem}, 'member' FROM {series}", lo=lo, hi=hi)
                run(f"INSERT INTO accounts (id, kind) SELECT 'member:' || {mem} || '\\:held', 'member_held' "
                    f"FROM {series}", lo=lo, hi=hi)
            conn.commit()

            # per earn e: p = e mod n, q = (p + 1 + (e div n) mod (n - 1)) mod n, never p
            p_of = f"(g.i % {n})"
            q_of = f"(({p_of} + 1 + (g.i / {n}) % {n - 1}) % {n})"
            member = f"'mem_seed' || {h(f'g.i % {members}')}"
            earn_id, burn_id = f"'ent_' || :stamp || {h('2 * g.i')}", f"'ent_' || :stamp || {h('2 * g.i + 1')}"
            total = pts * k
            for lo in range(0, earns, chunk_entries):
                hi = min(earns, lo + chunk_entries)
                entry_cols = ("id, kind, partner_id, member_id, reference, points, cycle_date, posted_at, occurred_at, "
                              "request, result")
                run(f"INSERT INTO entries ({entry_cols}) SELECT {earn_id}, 'earn', p.id, {member}, "
                    f"'seed-earn-' || g.i, {total}, :cycle, :now, :now, '{{}}', '{{}}' FROM {series} "
                    f"JOIN bench_partners p ON p.n = {p_of}", lo=lo, hi=hi)
                run(f"INSERT INTO entries ({entry_cols}) SELECT {burn_id}, 'burn', q.id, {member}, "
                    f"'seed-burn-' || g.i, {total}, :cycle, :now, :now, '{{}}', '{{}}' FROM {series} "
                    f"JOIN bench_partners q ON q.n = {q_of}", lo=lo, hi=hi)
                run(f"INSERT INTO transfers (id, entry_id, debit_account, credit_account, points) "
                    f"SELECT 'trf_' || :stamp || {h('2 * g.i')}, {earn_id}, 'partner:' || p.id || '\\:issued', "
                    f"'member:' || {member}, {total} FROM {series} JOIN bench_partners p ON p.n = {p_of}", lo=lo, hi=hi)
                run(f"INSERT INTO transfers (id, entry_id, debit_account, credit_account, points) "
                    f"SELECT 'trf_' || :stamp || {h('2 * g.i + 1')}, {burn_id}, 'member:' || {member}, "
                    f"'partner:' || q.id || '\\:redeemed', {total} FROM {series} JOIN bench_partners q ON q.n = {q_of}",
                    lo=lo, hi=hi)
                # lots, consumptions and lines: one row per (earn, lot index) — a series over lots, e = j div k
                e, lot_id = f"(g.j / {k})", f"'lot_' || :stamp || {h('g.j')}"
                p_l, q_l = f"({e} % {n})", f"((({e} % {n}) + 1 + ({e} / {n}) % {n - 1}) % {n})"
                member_l = f"'mem_seed' || {h(f'{e} % {members}')}"
                earn_l = f"'ent_' || :stamp || {h(f'2 * {e}')}"
                burn_l = f"'ent_' || :stamp || {h(f'2 * {e} + 1')}"
                lots = dict(lo=lo * k, hi=hi * k)
                run(f"INSERT INTO lots (id, member_id, entry_id, funder_partner_id, billing, contract_id, points, "
                    f"remaining, reserved, issued_at, expires_at) SELECT {lot_id}, {member_l}, {earn_l}, p.id, "
                    f"p.billing, p.contract_id, {pts}, 0, 0, :now, :expires FROM {lot_series} "
                    f"JOIN bench_partners p ON p.n = {p_l}", **lots)
                run(f"INSERT INTO lot_consumptions (id, entry_id, lot_id, seq, points) SELECT "
                    f"'lc_' || :stamp || {h('g.j')}, {burn_l}, {lot_id}, g.j % {k} + 1, {pts} FROM {lot_series}",
                    **lots)
                line_cols = "id, entry_id, cycle_date, payer, payee, kind, points, amount_micro, contract_id, lot_id"
                line_id = (lambda t: f"'obl_' || :stamp || {h(f'4 * g.j + {t}')}")
                run(f"INSERT INTO obligation_lines ({line_cols}) SELECT {line_id(0)}, {earn_l}, :cycle, p.id, "
                    f"'network', "
                    f"'issuance_fee', {pts}, {pts * ISSUANCE_FEE_MICRO}, p.contract_id, {lot_id} FROM {lot_series} "
                    f"JOIN bench_partners p ON p.n = {p_l}", **lots)
                run(f"INSERT INTO obligation_lines ({line_cols}) SELECT {line_id(1)}, {earn_l}, :cycle, p.id, "
                    f"'network', "
                    f"'prepaid_funding', {pts}, {pts * POINT_VALUE_MICRO}, p.contract_id, {lot_id} FROM {lot_series} "
                    f"JOIN bench_partners p ON p.n = {p_l} WHERE p.billing = 'prepaid'", **lots)
                run(f"INSERT INTO obligation_lines ({line_cols}) SELECT {line_id(2)}, {burn_l}, :cycle, "
                    f"CASE WHEN p.billing = 'postpaid' THEN p.id ELSE 'network' END, q.id, 'redemption', {pts}, "
                    f"{pts * POINT_VALUE_MICRO}, q.contract_id, {lot_id} FROM {lot_series} "
                    f"JOIN bench_partners p ON p.n = {p_l} JOIN bench_partners q ON q.n = {q_l}", **lots)
                run(f"INSERT INTO obligation_lines ({line_cols}) SELECT {line_id(3)}, {burn_l}, :cycle, q.id, "
                    f"'network', 'redemption_fee', {pts}, {pts * POINT_VALUE_MICRO * REDEMPTION_FEE_PPM // 1_000_000}, "
                    f"q.contract_id, "
                    f"{lot_id} FROM {lot_series} JOIN bench_partners q ON q.n = {q_l}", **lots)
                conn.commit()
                if on_progress:
                    on_progress(hi - lo)
            conn.execute(text("DROP TABLE bench_partners"))
            if replica:
                conn.execute(text("RESET session_replication_role"))
            if dialect == "postgresql":
                conn.execute(text("ANALYZE"))
            conn.commit()
        except BaseException:
            conn.invalidate()  # never hand a connection with the triggers off back to the pool
            raise
    seeded = network.tx(lambda tx: tx.session.execute(text(
        "SELECT COUNT(*) FROM obligation_lines WHERE cycle_date = :c"), {"c": cycle}).scalar_one())
    return Seeded(entries=2 * earns, lots=earns * k, lines=seeded, members=members, partners=n)
