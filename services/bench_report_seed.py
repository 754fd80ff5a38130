"""A set-based seeder for ``pointsnet bench report --scale full``: a month with 10 million entries of one partner.

Posting ten million entries through the ledger would take the benchmark many hours before it
measured a report, so the month is written with ``INSERT … SELECT`` over ``generate_series``
(PostgreSQL only), one statement per day and chunk, in the shape the posting path writes for
the same traffic (services/bench_seed.py and services/bench_verify.py do the same for settle and
verify). Pairs of an earn and a burn that spends part of the earn's lot; pair ``p`` (``r = p mod 20``):

* ``r ≥ 3``: earn and burn at the measured partner A (points redeemed where they were funded move
  no money: only the earn's issuance-fee line);
* ``r = 0``: earn at another partner, burn at A; ``r = 1``: earn at A, burn at another partner;
  ``r = 2``: earn and burn at two other partners. A cross-partner burn writes a redemption line
  (payer: the lot's postpaid funder) and its 5 % fee line.

So 36 of every 40 entries are A's. Each earn writes one entry, one transfer
``partner:<p>:issued → member``, one lot of ``100 + p mod 901`` points and an issuance-fee line;
each burn one entry, one transfer ``member → partner:<q>:redeemed`` and one consumption of
``1 + p mod 97`` points from that lot, which keeps the rest (the liability). The pairs are spread
over the month's 30 cycles in order, 2 ms apart within a day; lots expire under the network's
policy. Members' balances equal their lots' remaining points, so every balance check of
``pointsnet verify`` holds.

As for any bulk load, the seeded tables' plain indexes are dropped and rebuilt afterwards, and
row-by-row foreign-key triggers are off while loading (``session_replication_role = replica``); the
foreign keys are then checked set-based and the seeding fails on an orphan.

Cycles are then recorded as settled without settlement files (``record_settled``): closed, a
settlement run, and the net positions from the cycle's lines, rounded once as the statements do.
Writing the files would first need all ten million entries sealed into the transparency tree
(half an hour of CPU on the benchmark machine) and is what ``bench settle`` measures. The report
roll-ups of each such cycle are then written by ``roll_up_cycle``, which writes them as settlement does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta, timezone
from typing import Callable

from sqlalchemy import insert, text

from shared.db.types import new_id
from shared.ledger.cycles import close_cycle, cycle_end
from shared.models import Settlement, SettlementRun
from shared.money import round_micro_to_minor
from shared.network import Network
from shared.settlement.calendar import payment_date
from shared.settlement.netting import net_positions

# 36 of every 40 entries are the measured partner's (see the module's docstring)
PARTNER_SHARE = (36, 40)
CHUNK_PAIRS = 200_000
STEP_MS = 2  # between two pairs of a day

_SEED = """
WITH s AS (
    SELECT p, 100 + p % 901 AS earned, 1 + p % 97 AS burned,
           'mem_rpt' || lpad((p % :members)::text, 8, '0') AS member,
           CASE WHEN p % 20 IN (0, 2) THEN 1 + (p / 20) % 3 ELSE 0 END AS ei,
           CASE p % 20 WHEN 1 THEN 1 + (p / 20) % 3 WHEN 2 THEN 1 + (p / 20 + 1) % 3 ELSE 0 END AS bi,
           CAST(:t0 AS timestamp) + ((p - :day_first) * :step) * interval '1 millisecond' AS t,
           CAST(:expires0 AS timestamp) + ((p - :day_first) * :step) * interval '1 millisecond' AS expires
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS p
), w AS (
    SELECT s.*, (CAST(:partners AS text[]))[1 + ei] AS earner, (CAST(:partners AS text[]))[1 + bi] AS burner,
           (CAST(:contracts AS text[]))[1 + ei] AS earn_contract,
           (CAST(:contracts AS text[]))[1 + bi] AS burn_contract,
           'ent_' || lpad((2 * p)::text, 28, '0') AS earn_id, 'ent_' || lpad((2 * p + 1)::text, 28, '0') AS burn_id,
           'lot_' || lpad(p::text, 28, '0') AS lot_id
    FROM s
), entries_in AS (
    INSERT INTO entries (id, kind, partner_id, member_id, reference, points, cycle_date, posted_at, occurred_at,
                         request, result)
    SELECT earn_id, 'earn', earner, member, 'E' || (2 * p), earned, :cycle, t, t,
           '{"amount":' || (earned * 100) || ',"kind":"earn","member_id":"' || member || '","reference":"E'
           || (2 * p) || '"}', '{}' FROM w
    UNION ALL
    SELECT burn_id, 'burn', burner, member, 'B' || (2 * p + 1), burned, :cycle, t + interval '1 millisecond',
           t + interval '1 millisecond', '{}', '{}' FROM w
    RETURNING 1
), transfers_in AS (
    INSERT INTO transfers (id, entry_id, debit_account, credit_account, points)
    SELECT 'trf_' || lpad((2 * p)::text, 28, '0'), earn_id, 'partner:' || earner || '\\:issued', 'member:' || member,
           earned FROM w
    UNION ALL
    SELECT 'trf_' || lpad((2 * p + 1)::text, 28, '0'), burn_id, 'member:' || member,
           'partner:' || burner || '\\:redeemed', burned FROM w
    RETURNING 1
), lots_in AS (
    INSERT INTO lots (id, member_id, entry_id, funder_partner_id, billing, contract_id, points, remaining, reserved,
                      issued_at, expires_at)
    SELECT lot_id, member, earn_id, earner, 'postpaid', earn_contract, earned, earned - burned, 0, t, expires FROM w
    RETURNING 1
), consumptions_in AS (
    INSERT INTO lot_consumptions (id, entry_id, lot_id, seq, points)
    SELECT 'lc_' || lpad(p::text, 28, '0'), burn_id, lot_id, 1, burned FROM w
    RETURNING 1
)
INSERT INTO obligation_lines (id, entry_id, cycle_date, payer, payee, kind, points, amount_micro, contract_id,
                              lot_id)
SELECT 'obl_' || lpad((3 * p)::text, 28, '0'), earn_id, :cycle, earner, 'network', 'issuance_fee', earned,
       earned * 100000, earn_contract, lot_id FROM w
UNION ALL
SELECT 'obl_' || lpad((3 * p + 1)::text, 28, '0'), burn_id, :cycle, earner, burner, 'redemption', burned,
       burned * 1000000, burn_contract, lot_id FROM w WHERE ei <> bi
UNION ALL
SELECT 'obl_' || lpad((3 * p + 2)::text, 28, '0'), burn_id, :cycle, burner, 'network', 'redemption_fee', burned,
       burned * 50000, burn_contract, lot_id FROM w WHERE ei <> bi
"""


@dataclass(frozen=True)
class SeededMonth:
    pairs: int
    entries: int
    partner_entries: int
    members: int
    cycles: list[date]


def pairs_for(partner_entries: int) -> int:
    """Pairs giving at least ``partner_entries`` entries of the measured partner (a multiple of 20)."""
    share, of = PARTNER_SHARE
    pairs = -(-partner_entries * of // (2 * share))
    return -(-pairs // 20) * 20


def seed_month(network: Network, partners: list[str], contracts: list[str], *, year: int, month: int, days: int,
               partner_entries: int, members: int,
               on_progress: Callable[[int], None] | None = None) -> SeededMonth:
    """Write the month; ``partners[0]`` is the measured partner, three others make the cross-partner traffic."""
    from services.bench_verify import _drop_secondary_indexes, finish_bulk_load, vacuum_analyze

    if network.db.dialect != "postgresql":
        raise ValueError("the report month's set-based seeder runs on PostgreSQL (generate_series)")
    if len(partners) != 4:
        raise ValueError("the report month's seeder takes the measured partner and three others")
    pairs = pairs_for(partner_entries)
    members = max(1, min(members, pairs))
    settings = network.settings
    cycles = [date(year, month, 1) + timedelta(days=d) for d in range(days)]
    _seed_members(network, members)
    network.tx(lambda tx: tx.session.execute(text(
        "INSERT INTO cycles (cycle_date, status) VALUES (:c, 'open')"), [{"c": c} for c in cycles]))
    indexes = _drop_secondary_indexes(network)
    for d, cycle in enumerate(cycles):
        day_first, day_end = d * pairs // days, (d + 1) * pairs // days
        # the cycle's business day starts at its cut-off; pairs from one hour in, STEP_MS apart
        t0 = cycle_end(cycle - timedelta(days=1), settings) + timedelta(hours=1)
        expires0 = settings.lot_expiry(t0)
        last_t = t0 + timedelta(milliseconds=STEP_MS * (day_end - 1 - day_first) + 1)
        if last_t >= cycle_end(cycle, settings) or settings.lot_expiry(last_t) - last_t != expires0 - t0:
            raise ValueError("a day's pairs must fit in its cycle, under an expiry policy of fixed length")
        for first in range(day_first, day_end, CHUNK_PAIRS):
            last = min(first + CHUNK_PAIRS, day_end) - 1

            def unit(tx):
                tx.session.execute(text("SET LOCAL session_replication_role = replica"))
                tx.session.execute(text(_SEED), {
                    "first": first, "last": last, "day_first": day_first, "step": STEP_MS, "members": members,
                    "partners": partners, "contracts": contracts, "cycle": cycle,
                    "t0": t0.astimezone(timezone.utc).replace(tzinfo=None),
                    "expires0": expires0.astimezone(timezone.utc).replace(tzinfo=None)})
            network.tx(unit)
            if on_progress:
                on_progress(2 * (last - first + 1))
    finish_bulk_load(network, indexes)
    network.tx(lambda tx: tx.session.execute(text(
        "UPDATE members SET available = l.remaining FROM (SELECT member_id, SUM(remaining) AS remaining FROM lots "
        "GROUP BY member_id) l WHERE l.member_id = members.id AND members.id LIKE 'mem_rpt%'")))
    vacuum_analyze(network)
    entries, mine = network.tx(lambda tx: tx.session.execute(text(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE partner_id = :p) FROM entries"), {"p": partners[0]}).one(),
        readonly=True)
    return SeededMonth(pairs=pairs, entries=entries, partner_entries=mine, members=members, cycles=cycles)


def _seed_members(network: Network, members: int) -> None:
    mem = "'mem_rpt' || lpad(g.i::text, 8, '0')"
    for lo in range(0, members, 100_000):
        hi = min(members, lo + 100_000)
        params = {"lo": lo, "hi": hi - 1, "now": network.clock.now().astimezone(timezone.utc).replace(tzinfo=None)}
        series = "generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS g(i)"

        def unit(tx):
            tx.session.execute(text(f"INSERT INTO members (id, status, available, held, created_at) "
                                    f"SELECT {mem}, 'active', 0, 0, :now FROM {series}"), params)
            tx.session.execute(text(f"INSERT INTO accounts (id, kind) SELECT 'member:' || {mem}, 'member' "
                                    f"FROM {series}"), params)
            tx.session.execute(text(f"INSERT INTO accounts (id, kind) SELECT 'member:' || {mem} || '\\:held', "
                                    f"'member_held' FROM {series}"), params)
        network.tx(unit)


def record_settled(network: Network, cycle: date) -> None:
    """Record the cycle as settled, without files: closed, a run, the net positions of its lines."""
    def unit(tx):
        close_cycle(tx, cycle)
        sums = tx.session.execute(text(
            "SELECT payer, payee, kind, SUM(amount_micro) FROM obligation_lines WHERE cycle_date = :c "
            "GROUP BY payer, payee, kind"), {"c": cycle}).all()
        positions = net_positions({(payer, payee, kind): round_micro_to_minor(int(amount))
                                   for payer, payee, kind, amount in sums})
        pay_on = payment_date(tx, cycle)
        tx.session.execute(insert(SettlementRun.__table__).values(
            cycle_date=cycle, run_id=new_id("run"), directory="(seeded by the report benchmark: no files)",
            manifest_sha256=hashlib.sha256(b"").hexdigest(), settled_at=tx.now))
        if positions:
            tx.session.execute(insert(Settlement.__table__), [
                {"cycle_date": cycle, "party": party, "net_minor": net, "payment_date": pay_on,
                 "status": "due" if net else "nothing_due"} for party, net in positions.items()])
    network.tx(unit)
