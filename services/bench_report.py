"""The ``report`` scenario of ``pointsnet bench``: a month of one partner's report and the network analytics.

``small`` and ``medium`` post the month's events through the ledger and settle each cycle (settling
writes the cycle's report roll-ups). ``full`` is issue 6's size, a month with 10 million entries of
the measured partner: posting that would take many hours, so it is seeded set-based on PostgreSQL
(services/bench_report_seed.py), each cycle but the last recorded as settled and rolled up by
``roll_up_cycle``, which writes them as settlement does; seeding and rolling up are timed apart from the reports.

Then, for the month to date (last cycle open, aggregated live) and for the closed month (the last
cycle settled too, its members rolled up per month): the partner's report and the network analytics
from the roll-ups, and directly from the ledger, checked identical (``check_direct=False`` skips the
direct path, which at full scale takes minutes). Every timed step records its wall time, the CPU
seconds of this process and of the database's backends, and the load average.
"""

from __future__ import annotations

import os
import random
import time
from datetime import datetime, timezone

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import text

from services.bench import (
    REPORT_SCALES, REPORT_SEEDED, database_cpu_s, fresh_database, make_batches, seed_members,
)
from shared.clock import FixedClock
from shared.config import Settings
from shared.db.migrate import upgrade
from shared.ledger.events import Event
from shared.network import Network
from shared.partners.contracts import ContractTerms

DAYS = 30  # April 2026


class Meter:
    """Wall time, CPU seconds of this process and of the database backends, and the load, per named step."""

    def __init__(self, url: str):
        self.url = url
        self.figures: dict[str, float] = {}

    def __call__(self, name: str, work):
        """Run ``work``; a step measured again under the same name adds up (and keeps its longest run)."""
        cpu, db_cpu, started = time.process_time(), database_cpu_s(self.url), time.perf_counter()
        result = work()
        wall = time.perf_counter() - started
        self._add(f"{name}_s", wall)
        self._add(f"{name}_python_cpu_s", time.process_time() - cpu)
        if self.url.startswith("postgresql"):
            self._add(f"{name}_database_cpu_s", database_cpu_s(self.url) - db_cpu)
        self.figures[f"{name}_max_s"] = round(max(wall, self.figures.get(f"{name}_max_s", 0)), 3)
        self.figures[f"{name}_load_1m"] = round(os.getloadavg()[0], 2)
        return result

    def _add(self, key: str, value: float) -> None:
        self.figures[key] = round(self.figures.get(key, 0) + value, 3)


def _post_month(network: Network, clock: FixedClock, partners: list[str], events: int, batch_size: int,
                members: int, console: Console) -> list:
    from shared.ledger.cycles import cycle_date_for

    member_ids = seed_members(network, partners, min(members, max(events // 10, 100)))
    rng = random.Random(11)
    per_day = max(events // DAYS, 1)
    cycles = []
    with Progress(TextColumn("report: posting a month"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("post", total=per_day * DAYS)
        for day in range(DAYS):
            cycles.append(cycle_date_for(clock.now(), network.settings))
            for index, batch in enumerate(make_batches(member_ids, per_day, batch_size, rng)):
                batch = [Event(e.kind, f"d{day}-{e.reference}", e.member_id, e.points, e.amount) for e in batch]
                who = partners[0] if rng.random() < 0.7 else partners[1 + index % 3]
                network.post(who, batch)
                progress.update(task, advance=len(batch))
            clock.advance(days=1)
    return cycles


def scenario_report(database_url: str | None, *, scale: str, batch_size: int, members: int, console: Console,
                    check_direct: bool = True, seeded_entries: int | None = None) -> dict:
    """A month of traffic at one partner and a little elsewhere, its cycles settled, then the reports timed.

    ``seeded_entries`` (or ``--scale full``) seeds that many entries of the measured partner set-based.
    """
    from shared.reports.rollup import roll_up_cycle

    seeded_entries = seeded_entries or REPORT_SEEDED.get(scale)
    with fresh_database(database_url) as (url, workdir):
        upgrade(url)
        clock = FixedClock(datetime(2026, 4, 1, 2, tzinfo=timezone.utc))
        network = Network(Settings(data_dir=workdir), database_url=url, clock=clock)
        meter = Meter(url)
        try:
            partners = [network.create_partner(f"Bench{i}", ContractTerms(
                "postpaid", "1", "0.1", "0.05"))["partner_id"] for i in range(4)]
            sizes: dict = {}
            if seeded_entries:
                from services.bench_report_seed import record_settled, seed_month

                contracts = network.tx(lambda tx: [tx.session.execute(text(
                    "SELECT id FROM contracts WHERE partner_id = :p"), {"p": p}).scalar_one() for p in partners])
                with Progress(TextColumn("report: seeding a month"), BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn(), console=console) as progress:
                    task = progress.add_task("seed", total=None)
                    month = meter("seed", lambda: seed_month(
                        network, partners, contracts, year=2026, month=4, days=DAYS,
                        partner_entries=seeded_entries, members=max(members, seeded_entries // 50),
                        on_progress=lambda n: progress.update(task, advance=n)))
                cycles = month.cycles
                clock.set(datetime(2026, 5, 1, 2, tzinfo=timezone.utc))  # the month is over
                sizes = {"entries": month.entries, "members": month.members}

                def settle(cycle):
                    record_settled(network, cycle)
                    network.tx(lambda tx: roll_up_cycle(tx, cycle))

                def settle_month():
                    with Progress(TextColumn("report: settling and rolling up"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), console=console) as progress:
                        task = progress.add_task("roll up", total=len(cycles) - 1)
                        for cycle in cycles[:-1]:  # the month's last cycle stays open: aggregated live
                            meter("record_settled", lambda: record_settled(network, cycle))
                            meter("rollup_cycles", lambda: network.tx(lambda tx: roll_up_cycle(tx, cycle)))
                            progress.update(task, advance=1)
            else:
                events = REPORT_SCALES[scale]
                cycles = _post_month(network, clock, partners, events, batch_size, members, console)
                sizes = {"events": max(events // DAYS, 1) * DAYS}
                settle = network.settle  # each settlement also writes the cycle's report roll-ups

                def settle_month():
                    for cycle in cycles[:-1]:  # the month's last cycle stays open: aggregated live
                        network.settle(cycle)
            meter("settle_month", settle_month)
            return {"scenario": "report", "database": network.db.dialect, "scale": scale,
                    "seeded": bool(seeded_entries), **sizes,
                    **measure_month(network, partners, cycles, settle, meter, console, check_direct)}
        finally:
            network.close()


def measure_month(network: Network, partners: list[str], cycles: list, settle, meter: Meter, console: Console,
                  check_direct: bool = True) -> dict:
    """Time the reports of April 2026 whose cycles but the last are settled and rolled up: the month to
    date, then (``settle`` the last cycle) the closed month; the liabilities alone; rendering."""
    from shared.reports.movements import liability
    from shared.reports.network import network_report
    from shared.reports.partner import partner_report
    from shared.reports.period import Period
    from shared.reports.render import render

    period = Period.month(2026, 4)
    if network.db.dialect == "postgresql":  # fresh statistics after the bulk load, as autovacuum would
        network.tx(lambda tx: tx.session.execute(text("ANALYZE")))
    entries = network.tx(lambda tx: tx.session.execute(text(
        "SELECT COUNT(*) FROM entries WHERE partner_id = :p"), {"p": partners[0]}).scalar_one())
    paths = (("rollup", True), ("direct", False)) if check_direct else (("rollup", True),)

    def timed(stage: str) -> tuple[dict, dict]:
        """Both reports from the roll-ups, then (checked) directly from the ledger."""
        built = {}
        for path, rollup in paths:
            with console.status(f"report: {stage or 'month_to_date_'}{path}"):
                built[("partner", path)] = meter(f"partner_report_{stage}{path}", lambda: network.tx(
                    lambda tx: partner_report(tx, partners[0], period, rollup=rollup), readonly=True))
                built[("network", path)] = meter(f"network_report_{stage}{path}", lambda: network.tx(
                    lambda tx: network_report(tx, period, rollup=rollup), readonly=True))
        for kind in ("partner", "network") if check_direct else ():
            if built[(kind, "rollup")] != built[(kind, "direct")]:
                raise AssertionError(f"the {kind} report from the roll-ups differs from the direct one")
        return built[("partner", "rollup")], built[("network", "rollup")]

    timed("")  # the month to date: its last cycle is open, aggregated live
    meter("settle_last_cycle", lambda: settle(cycles[-1]))  # the month is settled: members per month
    if network.db.dialect == "postgresql":
        network.tx(lambda tx: tx.session.execute(text("ANALYZE")))
    report, analytics = timed("closed_month_")
    # the one part still computed from the ledger for a closed month
    meter("partner_liability", lambda: network.tx(lambda tx: liability(tx, period, partners[0]),
                                                  readonly=True))
    meter("network_liability", lambda: network.tx(lambda tx: liability(tx, period), readonly=True))
    # a partner with few of the ledger's open lots: what the funder index is for
    meter("small_partner_liability", lambda: network.tx(lambda tx: liability(tx, period, partners[1]), readonly=True))
    if network.db.dialect == "postgresql":  # what the funder index (migration 0016) saves, same data
        network.tx(lambda tx: tx.session.execute(text("DROP INDEX ix_lots_open_funder")))
        network.tx(lambda tx: tx.session.execute(text("ANALYZE lots")))
        meter("partner_liability_without_funder_index", lambda: network.tx(
            lambda tx: liability(tx, period, partners[0]), readonly=True))
        meter("small_partner_liability_without_funder_index", lambda: network.tx(
            lambda tx: liability(tx, period, partners[1]), readonly=True))
    rollup_rows = network.tx(lambda tx: {table: tx.session.execute(text(
        f"SELECT COUNT(*) FROM {table} WHERE partner_id = :p"), {"p": partners[0]}).scalar_one()
        for table in ("report_cycle_members", "report_month_members")}, readonly=True)
    started = time.perf_counter()
    for fmt in ("json", "csv", "html"):
        render(report, fmt)
        render(analytics, fmt)
    render_s = time.perf_counter() - started
    figures = {k: v for k, v in meter.figures.items()
               if not k.endswith("_max_s") or k == "rollup_cycles_max_s"}
    partner_s = figures["partner_report_rollup_s"]
    return {"partner_entries": entries, "cycles": len(cycles), "direct_checked": check_direct,
            "elapsed_s": partner_s, "partner_report_s": partner_s,
            "network_report_s": figures["network_report_rollup_s"],
            "settle_month_s": figures.get("settle_month_s", ""),
            "render_s": round(render_s, 3),
            "partner_cycle_member_rows": rollup_rows["report_cycle_members"],
            "partner_month_member_rows": rollup_rows["report_month_members"],
            # the partner's entries of the month over its report's time (not events posted per second)
            "partner_entries_reported_per_s": round(entries / partner_s, 1) if partner_s else "",
            **figures}
