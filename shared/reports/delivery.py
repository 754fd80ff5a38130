"""Reports written to the data directory: one set per settled cycle, one per complete month.

``<data>/reports/cycles/<cycle>/`` and ``<data>/reports/monthly/<YYYY-MM>/`` each hold, for
every partner, ``partner-<id>.json|csv|html``, the network analytics ``network.json|csv|html``
and ``index.json`` (files and their SHA-256), written last: a directory with an index is complete.
A set is written into a temporary sibling and renamed into place, so a crash leaves no half set;
the reports are functions of the ledger, so writing a set again gives the same bytes. One
publisher at a time (the scheduled job, `pointsnet reports publish`): see ``publishing``.
Only the network's cycles count, from its first cycle on (``runs.of_the_network``, as the reports'
money figures): a settlement of an earlier day (a typo run by hand before such runs were refused) has
no set, and an open ``cycles`` row of one (an older merge, erasure or buy-out left it) holds no month back.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select, text

from shared.db.advisory import advisory_key
from shared.ledger.cycles import cycle_date_for
from shared.models import Cycle, Partner, SettlementRun
from shared.network import Network
from shared.reports.network import network_report
from shared.reports.partner import partner_report
from shared.reports.period import Period
from shared.reports.render import FORMATS, render
from shared.reports.rollup import due_for_rollup, roll_up_cycle
from shared.settlement.runs import of_the_network
from shared.staging import staged_directory, write_synced

INDEX = "index.json"


def reports_dir(network: Network) -> Path:
    return network.settings.data_dir / "reports"


def write_set(network: Network, period: Period, target: Path) -> list[str]:
    """Every partner's report and the network analytics of ``period`` into ``target`` (replaced whole)."""
    locale = network.settings.locale

    def build(tx):
        partners = tx.session.execute(select(Partner.id).order_by(Partner.id)).scalars().all()
        return ([(f"partner-{pid}", partner_report(tx, pid, period)) for pid in partners]
                + [("network", network_report(tx, period))])

    reports = network.tx(build, readonly=True)
    files = {}
    with staged_directory(target) as staging:
        for stem, report in reports:
            for fmt in FORMATS:
                content = render(report, fmt, locale).encode("utf-8")
                write_synced(staging / f"{stem}.{fmt}", content)  # on disk before the index says it is whole
                files[f"{stem}.{fmt}"] = hashlib.sha256(content).hexdigest()
        index = {"period": period.json(), "locale": locale,
                 "files": [{"name": name, "sha256": digest} for name, digest in sorted(files.items())]}
        write_synced(staging / INDEX, (json.dumps(index, indent=2, sort_keys=True) + "\n").encode())
    return sorted(files)


def _state(network: Network) -> tuple[list[date], set[date]]:
    """The network's settled cycles, and its cycles with entries not settled yet: from its first cycle on
    (``of_the_network``), so a stray settlement of an earlier day gets no set and makes no month, and an
    open ``cycles`` row of such a day (never settled) holds no month back."""
    def read(tx):
        settled = tx.session.execute(select(SettlementRun.cycle_date).where(
            of_the_network(SettlementRun.cycle_date)).order_by(SettlementRun.cycle_date)).scalars()
        unsettled = tx.session.execute(select(Cycle.cycle_date).where(
            Cycle.cycle_date.not_in(select(SettlementRun.cycle_date)), of_the_network(Cycle.cycle_date))).scalars()
        return list(settled), set(unsettled)
    return network.tx(read, readonly=True)


PUBLISH_LOCK = advisory_key("reports", "publish")


@contextmanager
def publishing(network: Network) -> Iterator[None]:
    """Held while one publisher looks for unwritten sets and writes them, in whatever process: the
    job and a `pointsnet reports publish` run by hand both found the same sets unwritten and both
    wrote them. The second waits and then finds them written. PostgreSQL: a session-level advisory
    lock on a connection of its own (not the jobs' own ``("job", name)`` lock, which each of the job's
    units takes); SQLite (one machine): a lock on a file in the reports directory."""
    if network.db.dialect == "postgresql":
        with network.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PUBLISH_LOCK})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PUBLISH_LOCK})
        return
    root = reports_dir(network)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".publish.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def _last_day_of(name: str) -> date:
    """A monthly set's name, ``YYYY-MM``, as the month's last day (ValueError for any other name)."""
    year, month = name.split("-")
    return Period.month(int(year), int(month)).last


def sets_ahead(tx, limit: int = 100) -> list[tuple[str, str, str]]:
    """``pointsnet verify``: the published report sets (those with an index) of periods the database has
    not settled, as (check, period, detail), at most ``limit``: a cycle's set whose cycle has no
    settlement, a month's whose last day has none (a month is published once all of it is settled). A
    database restored from a backup older than the data directory: the sets hold figures of a ledger
    it is behind, and publishing skips a period whose set is there."""
    root = tx.settings.data_dir / "reports"
    found = []
    for kind, parse in (("cycles", date.fromisoformat), ("monthly", _last_day_of)):
        try:
            names = sorted(path.name for path in (root / kind).iterdir() if (path / INDEX).exists())
        except OSError:  # no such directory: nothing published
            continue
        days = {}
        for name in names:
            try:
                days[name] = parse(name)
            except ValueError:
                continue
        if not days:
            continue
        settled = set(tx.session.execute(select(SettlementRun.cycle_date).where(
            SettlementRun.cycle_date.in_(sorted(set(days.values()))))).scalars())
        found += [("report_set_ahead", name, f"{root / kind / name} is published but the database has not "
                   f"settled {'the cycle' if kind == 'cycles' else 'the month'}: a database behind the data "
                   f"directory (restored from an older backup?): see docs/operations.md, \"Restoring\"")
                  for name, day in days.items() if day not in settled]
    return found[:limit]


def publish_due(network: Network, *, limit: int | None = 10) -> dict:
    """Write the report sets not written yet: each settled cycle's, and each month's once it is over
    and all of its cycles are settled; at most ``limit`` sets per call (oldest first), so a job
    catching up a long history stays short. Returns what was written. One publisher at a time."""
    with publishing(network):
        return _publish_due(network, limit)


def _publish_due(network: Network, limit: int | None) -> dict:
    root = reports_dir(network)
    rolled_up = roll_up_settled(network, limit=limit)
    settled, unsettled = _state(network)
    written = {"cycles": [], "months": []}
    def room() -> bool:
        return limit is None or len(written["cycles"]) + len(written["months"]) < limit

    for cycle in settled:
        target = root / "cycles" / cycle.isoformat()
        if room() and not (target / INDEX).exists():
            write_set(network, Period(cycle, cycle), target)
            written["cycles"].append(cycle.isoformat())
    today = cycle_date_for(network.clock.now(), network.settings)
    settled_days = set(settled)
    for year, month in sorted({(c.year, c.month) for c in settled}):
        period = Period.month(year, month)
        if today <= period.last or not _every_day_settled(period, settled, settled_days) or any(
                period.first <= c <= period.last for c in unsettled):
            continue
        target = root / "monthly" / f"{year:04d}-{month:02d}"
        if room() and not (target / INDEX).exists():
            write_set(network, period, target)
            written["months"].append(f"{year:04d}-{month:02d}")
    if rolled_up:
        written["rolled_up"] = rolled_up
    return written


def _every_day_settled(period: Period, settled: list[date], settled_days: set[date]) -> bool:
    """Whether every day of ``period`` from the network's first settled cycle on is settled. A day's
    ``cycles`` row is made by its first write, inside that write's transaction: a quiet last day of the
    month with a write still in flight at midnight has no row the publisher can see, so "no unsettled
    row" alone published the month without that write, for good (until 2026-12-07). Settlement closes
    each day, quiet ones too, waiting for the writes in flight, before it settles it."""
    day = max(period.first, settled[0])
    while day <= period.last:
        if day not in settled_days:
            return False
        day += timedelta(days=1)
    return True


def roll_up_settled(network: Network, *, limit: int | None = 10) -> list[str]:
    """Roll up settled cycles that have no roll-ups (settled before they existed), oldest first,
    one unit of work per cycle. Settlement writes them for every new cycle itself."""
    done = []
    for cycle in network.tx(lambda tx: due_for_rollup(tx, limit), readonly=True):
        if network.tx(lambda tx: roll_up_cycle(tx, cycle)):
            done.append(cycle.isoformat())
    return done
