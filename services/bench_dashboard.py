"""``pointsnet bench dashboard``: the read side behind the Ledger and Settlement pages on a large ledger.

One cycle of batch-posted traffic (``--events``), settled and sealed; then each page's queries timed
(the median of five runs, in milliseconds): the transaction explorer unfiltered, by partner, member,
kind and reference and at a deep offset, a transaction's detail with its inclusion proof checked, and
a settled cycle's runs, net positions, bilateral sums and a partner's statements.
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import datetime, timezone

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import text

from shared.config import Settings
from shared.db.migrate import upgrade
from shared.network import Network
from shared.partners.contracts import ContractTerms

RUNS = 5
PAGE = 50


def _median_ms(network: Network, read) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        network.tx(read, readonly=True)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 1)


class NoBurnToSample(AssertionError):
    """No burn was accepted: the member and reference filters and the detail have nothing to sample."""


def _sample_burn(tx, events: int, members: int):
    """One of the accepted burns to sample the member, reference and detail queries with: the 101st in
    id order, or the middle one when fewer were accepted (a small --events over many --members)."""
    burns = tx.session.execute(text("SELECT COUNT(*) FROM entries WHERE kind = 'burn'")).scalar_one()
    if not burns:
        raise NoBurnToSample(f"no burn was accepted among {events} events over {members} members: nothing to "
                             "sample the member, reference and detail queries with (give more --events)")
    return tx.session.execute(text(
        "SELECT id, member_id, reference, partner_id FROM entries WHERE kind = 'burn' "
        "ORDER BY id LIMIT 1 OFFSET :offset"), {"offset": min(100, burns // 2)}).one()


def scenario_dashboard(database_url: str | None, *, events: int, batch_size: int, members: int,
                       console: Console) -> dict:
    from shared.clock import FixedClock
    from shared.ledger.cycles import cycle_date_for
    from shared.ledger.explorer import EntryFilter, entries_page, entry_detail
    from shared.settlement import positions
    from shared.transparency.inclusion import inclusion_status
    from services.bench import fresh_database, make_batches, seed_members

    with fresh_database(database_url) as (url, workdir):
        upgrade(url)
        clock = FixedClock(datetime(2026, 1, 6, 2, tzinfo=timezone.utc))
        network = Network(Settings(data_dir=workdir), database_url=url, clock=clock)
        try:
            partners = [network.create_partner(f"Bench{i}", ContractTerms("postpaid", "1", "0.1", "0.05"))
                        ["partner_id"] for i in range(4)]
            member_ids = seed_members(network, partners, members)
            with Progress(TextColumn("dashboard: posting a cycle"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console) as progress:
                task = progress.add_task("post", total=events)
                for index, batch in enumerate(make_batches(member_ids, events, batch_size, random.Random(5))):
                    network.post(partners[index % len(partners)], batch)
                    progress.update(task, advance=len(batch))
            # sampled before settling: a ledger without a burn fails fast
            burn = network.tx(lambda tx: _sample_burn(tx, events, members), readonly=True)
            cycle = cycle_date_for(clock.now(), network.settings)
            clock.advance(days=1)
            network.settle(cycle)
            network.checkpoint()
            if network.db.dialect == "postgresql":
                with network.db.engine.connect() as conn:
                    conn.execute(text("ANALYZE"))
                    conn.commit()
            entries = network.tx(lambda tx: tx.session.execute(text("SELECT COUNT(*) FROM entries")).scalar_one())
            today = cycle_date_for(clock.now(), network.settings)

            def explore(where: EntryFilter, offset: int = 0):
                return lambda tx: entries_page(tx, where, offset=offset, limit=PAGE)

            figures = {
                "explorer_ms": _median_ms(network, explore(EntryFilter())),
                "explorer_partner_ms": _median_ms(network, explore(EntryFilter(partner_id=partners[0]))),
                "explorer_member_ms": _median_ms(network, explore(EntryFilter(member_id=burn.member_id))),
                "explorer_kind_ms": _median_ms(network, explore(EntryFilter(kind="burn"))),
                "explorer_reference_ms": _median_ms(network, explore(EntryFilter(reference=burn.reference))),
                "explorer_offset_10000_ms": _median_ms(network, explore(EntryFilter(), offset=10_000)),
                "entry_detail_ms": _median_ms(network, lambda tx: (entry_detail(tx, burn.id),
                                                                   inclusion_status(tx, burn.id))),
                "runs_ms": _median_ms(network, lambda tx: positions.runs_page(tx, today, limit=PAGE)),
                "positions_ms": _median_ms(network, lambda tx: positions.positions_page(tx, cycle, limit=PAGE)),
                "bilateral_ms": _median_ms(network, lambda tx: positions.bilateral_page(tx, cycle, limit=PAGE)),
                "statements_ms": _median_ms(network, lambda tx: positions.party_statements_page(
                    tx, partners[0], limit=PAGE)),
            }
            proof = network.tx(lambda tx: inclusion_status(tx, burn.id), readonly=True)["state"]
            if proof != "verified":
                raise AssertionError(f"the sampled entry's inclusion proof is {proof}, not verified")
            return {"scenario": "dashboard", "database": network.db.dialect, "events": events,
                    "entries": entries, "elapsed_s": round(max(figures.values()) / 1000, 3)} | figures
        finally:
            network.close()
