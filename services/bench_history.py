"""``pointsnet bench history``: what single requests cost once the ledger has a long history.

A benchmark on a fresh database never sees a cost that grows with time. This scenario gives the
ledger, through the posting path, the history that made single requests slow before 2026-12-03:

* a member with ``size`` spent lots and 40 open ones (a loyal member's years), and one with
  ``size`` open lots: single burns of 1 point of each;
* a network campaign with a cap in all that has given ``size`` awards: single earns under it;
* a prepaid partner with an enforced float that has issued ``size`` earns: single earns of it;

each beside the same request for a member or partner without history; then the reads and jobs that
run all day over that history (a member's read, the first and last page of the shop's transactions,
one pass of the hold-timeout, reminder and activity-status jobs, after ``max(size // 10, 10)`` holds,
ten days before the hoarder's first ``EARLY_LOTS`` lots expire).
Figures are medians in ms (``…_ms``) of ``SAMPLES`` requests (``JOB_SAMPLES`` job passes) after
``WARM_UP``. The scenario fails unless the burns took the members' earliest lots, the campaign's and
the float's kept totals exist, the bounded reads give what the unbounded ones give, and ``pointsnet
verify`` finds nothing (which checks each kept total against the rows it sums).
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime, timedelta, timezone

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select

from shared.clock import FixedClock
from shared.config import Settings
from shared.db.migrate import upgrade
from shared.ledger.events import Event
from shared.ledger.posting import MAX_BATCH
from shared.ledger.verify import verify
from shared.ledger.queries import member_balance, member_lots_page, other_writers, partner_entries_page
from shared.models import CampaignTotal, PartnerLimits
from shared.network import Network
from shared.partners.contracts import ContractTerms
from shared.partners.limits import record_topup, set_limits
from shared.programme.jobs import recompute_statuses, remind_expiring
from shared.programme.tiers import current_tier
from shared.rules.store import set_rules

HISTORY_SIZES = {"small": 300, "medium": 20_000, "full": 100_000}
SAMPLES, WARM_UP = 50, 10
JOB_SAMPLES = 10  # job passes (each also after WARM_UP)
PAGE = 100  # a page of GET /v1/transactions
EARLY_LOTS = 3  # the hoarder's lots that expire a month before its others
BATCH = 1_000
CAMPAIGN = ("campaigns: [{id: city, name: City day, starts_on: 2026-01-01, ends_on: 2026-12-31, "
            "bonus_points: 10, funded_by: network, campaign_cap: 1000000000}]")


class HistoryCheckFailed(AssertionError):
    pass


def _median_ms(call, count: int) -> float:
    times = []
    for n in range(WARM_UP + count):
        started = time.perf_counter()
        call(n)
        if n >= WARM_UP:
            times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 2)


def scenario_history(database_url: str | None, *, size: int, console: Console) -> dict:
    from services.bench import fresh_database

    with fresh_database(database_url) as (url, workdir):
        upgrade(url)
        clock = FixedClock(datetime(2026, 3, 2, 2, tzinfo=timezone.utc))
        # the scenario's lots expire as the default policy says, whatever this environment sets
        network = Network(Settings(data_dir=workdir, expiry_policy="rolling:12"), database_url=url, clock=clock)
        try:
            return _run(network, clock, size, console)
        finally:
            network.close()


def _run(network: Network, clock: FixedClock, size: int, console: Console) -> dict:
    shop = network.create_partner("HistoryShop", ContractTerms("postpaid", "1", "0.1", "0.05", "0"))["partner_id"]
    prepaid = network.create_partner("HistoryPrepaid", ContractTerms("prepaid", "1", "0", "0", "0"))["partner_id"]
    enrol = iter(range(10**6))

    def member(*partners: str) -> str:
        member_id = network.enrol(partners[0], phone=f"+86137{next(enrol):08d}")["member_id"]
        for other in partners[1:]:
            network.enrol(other, link_token=network.mint_link_token(partners[0], member_id)["link_token"])
        return member_id

    loyal, hoarder, newcomer = member(shop), member(shop), member(shop)
    earners = [member(shop, prepaid) for _ in range(50)]
    network.tx(lambda tx: record_topup(tx, prepaid, 10**12, "HISTORY-1"))
    network.tx(lambda tx: set_limits(tx, prepaid, float_overdraft_minor=0))
    network.tx(lambda tx: set_rules(tx, "network", CAMPAIGN))
    clock.advance(seconds=1)
    refs = iter(range(10**9))

    def post(partner: str, events: list[Event]) -> None:
        outcomes = network.post(partner, events)
        refused = [o for o in outcomes if not isinstance(o, dict)]
        if refused:
            raise HistoryCheckFailed(f"seeding refused: {refused[0]}")

    # the hoarder's first lots, a month before the rest: the member read later finds them expiring soon
    post(shop, [Event("earn", f"h{next(refs)}", hoarder, points=1_000) for _ in range(EARLY_LOTS)])
    clock.advance(days=31)

    steps = [
        # loyal: size lots of 10 earned and spent, then 40 open; hoarder: size open lots
        *[(shop, [Event("earn", f"h{next(refs)}", loyal, points=10) for _ in range(min(BATCH, size - n))])
          for n in range(0, size, BATCH)],
        *[(shop, [Event("burn", f"h{next(refs)}", loyal, points=100) for _ in range(min(BATCH // 10, (size - n) // 10))])
          for n in range(0, size, BATCH)],
        (shop, [Event("earn", f"h{next(refs)}", loyal, points=10) for _ in range(40)]),
        *[(shop, [Event("earn", f"h{next(refs)}", hoarder, points=10) for _ in range(min(BATCH, size - n))])
          for n in range(0, size, BATCH)],
        # the campaign's awards (earns by amount, each given 10 by the campaign) and the float's lines
        *[(shop, [Event("earn", f"h{next(refs)}", earners[i % 50], amount=100) for i in range(min(BATCH, size - n))])
          for n in range(0, size, BATCH)],
        *[(prepaid, [Event("earn", f"h{next(refs)}", earners[i % 50], points=1) for i in range(min(BATCH, size - n))])
          for n in range(0, size, BATCH)],
    ]
    with Progress(TextColumn("history: building the ledger's past"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("seed", total=len(steps))
        for partner, events in steps:
            if events:
                post(partner, events)
            clock.advance(seconds=1)  # a batch's entries share an instant; batches do not
            progress.advance(task)
    network.earn(shop, newcomer, f"h{next(refs)}", points=10 * (WARM_UP + SAMPLES))

    burns = {}
    for name, member_id in (("burn_no_history_ms", newcomer), ("burn_spent_history_ms", loyal),
                            ("burn_open_lots_ms", hoarder)):
        burns[name] = _median_ms(lambda n: network.burn(shop, member_id, f"b{next(refs)}", 1), SAMPLES)
    for member_id in (loyal, hoarder):
        earliest = network.tx(lambda tx: member_lots_page(tx, member_id, limit=1)[0][0]["lot_id"], readonly=True)
        taken = network.burn(shop, member_id, f"b{next(refs)}", 1)["consumed"][0]["lot_id"]
        if taken != earliest:
            raise HistoryCheckFailed(f"a burn of {member_id} took {taken}, not its earliest open lot {earliest}")
    fresh = member(shop, prepaid)
    earns = {
        "earn_capped_campaign_ms": _median_ms(
            lambda n: network.earn(shop, earners[n % 50], f"c{next(refs)}", amount=100), SAMPLES),
        "earn_enforced_float_ms": _median_ms(
            lambda n: network.earn(prepaid, earners[n % 50], f"f{next(refs)}", points=1), SAMPLES),
        "earn_no_history_ms": _median_ms(lambda n: network.earn(prepaid, fresh, f"n{next(refs)}", points=1),
                                         SAMPLES),
    }

    # the kept totals exist and cover the history; verify checks each against the rows it sums
    total, drawn = network.tx(lambda tx: (
        tx.session.execute(select(CampaignTotal.points)).scalar_one(),
        tx.session.execute(select(PartnerLimits.float_drawn_micro)
                           .where(PartnerLimits.partner_id == prepaid)).scalar_one()), readonly=True)
    if total < 10 * size or drawn is None:
        raise HistoryCheckFailed(f"kept totals: campaign {total} for a history of {size} awards, float {drawn}")
    holder, holds = member(shop), max(size // 10, 10)
    network.earn(shop, holder, f"h{next(refs)}", points=holds)
    reads = _reads_and_jobs(network, clock, shop, hoarder, newcomer, (holder, holds), refs, console)
    spends = _batch_of_spends(network, shop, hoarder, min(size // 2, MAX_BATCH), refs)
    report = network.tx(verify, readonly=True)
    if not report.ok:
        raise HistoryCheckFailed(f"verify: {report.offences[0].check}: {report.offences[0].detail}")
    return {"scenario": "history", "database": network.db.dialect, "history": size, "samples": SAMPLES,
            **burns, **earns, **reads, **spends, "campaign_awards": total // 10}


def _batch_of_spends(network: Network, shop: str, member_id: str, count: int, refs) -> dict:
    """One batch of ``count`` burns of 10 points by the member with many open lots (a partner's file of
    one account's purchases): each empties a lot or most of one. Until 2026-12-07 every spend sorted
    and scanned all the member's lots left, so such a batch took time quadratic in its size. Fails
    unless each burn took exactly what taking the earliest open lots in turn gives; then the same file
    reversed in one batch, which fails unless every lot has its points back."""
    lots = network.tx(lambda tx: member_lots_page(tx, member_id, limit=10**8)[0], readonly=True)
    free = [[lot["lot_id"], lot["remaining"] - lot["reserved"]] for lot in lots if lot["remaining"] > lot["reserved"]]
    expected, at = [], 0
    for _ in range(count):
        left, plan = 10, []
        while left:
            take = min(free[at][1], left)
            plan.append((free[at][0], take))
            free[at][1] -= take
            left -= take
            at += free[at][1] == 0
        expected.append(plan)
    events = [Event("burn", f"s{next(refs)}", member_id, points=10) for _ in range(count)]
    started = time.perf_counter()
    outcomes = network.post(shop, events)
    elapsed = time.perf_counter() - started
    taken = [[(c["lot_id"], c["points"]) for c in o["consumed"]] if isinstance(o, dict) else repr(o) for o in outcomes]
    wrong = next((n for n, (got, want) in enumerate(zip(taken, expected)) if got != want), None)
    if wrong is not None:
        raise HistoryCheckFailed(f"burn {wrong} of the batch took {taken[wrong]}, not {expected[wrong]}")
    # then the whole file reversed (a till's day voided): every point goes back to the lot it came from
    reversals = [Event("reversal", f"s{next(refs)}", original_reference=event.reference) for event in events]
    started = time.perf_counter()
    outcomes = network.post(shop, reversals)
    reversed_s = time.perf_counter() - started
    refused = [o for o in outcomes if not isinstance(o, dict)]
    after = network.tx(lambda tx: member_lots_page(tx, member_id, limit=10**8)[0], readonly=True)
    def remaining(listed: list[dict]) -> list[tuple]:
        return [(lot["lot_id"], lot["remaining"]) for lot in listed]

    if refused or remaining(after) != remaining(lots):
        raise HistoryCheckFailed(f"the batch's reversal left the member's lots other than before ({refused[:1]})")
    return {"batch_spends": count, "batch_spends_open_lots_ms": round(elapsed * 1000, 1),
            "batch_reversals_open_lots_ms": round(reversed_s * 1000, 1)}


def _reads_and_jobs(network: Network, clock: FixedClock, shop: str, hoarder: str, newcomer: str,
                    holding: tuple[str, int], refs, console: Console) -> dict:
    """Reads and jobs that run all day, with the history above (and ``holding``: a member and how
    many holds it places and has captured): a member's read (``GET /v1/members/{id}``) of the member
    with ``size`` open lots and of one without; the shop's first and last page of ``GET /v1/transactions``; one pass of the
    hold-timeout, reminder and activity-status jobs. Each must give what the unbounded read gives."""
    holder, holds = holding
    with Progress(TextColumn("history: holds placed and captured"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("holds", total=holds)
        for _ in range(holds):
            hold = network.hold(shop, holder, f"hold{next(refs)}", 1)
            network.capture(shop, hold["hold_id"], reference=f"cap{next(refs)}")
            clock.advance(seconds=1)
            progress.advance(task)

    # to ten days before the hoarder's first lots expire: they are expiring soon, its others are not
    first_expiry = datetime.fromisoformat(network.tx(
        lambda tx: member_lots_page(tx, hoarder, limit=1)[0][0]["expires_at"], readonly=True))
    clock.set(first_expiry - timedelta(days=10))

    def member_read(member_id: str) -> dict:
        return network.tx(lambda tx: {**member_balance(tx, member_id), "tier": current_tier(tx, member_id)},
                          readonly=True)

    expiring = {}
    for member_id in (hoarder, newcomer):
        full = network.tx(lambda tx: member_balance(tx, member_id, with_lots=True), readonly=True)
        expiring[member_id] = member_read(member_id)["expiring_soon"]
        if expiring[member_id] != full["expiring_soon"]:
            raise HistoryCheckFailed(f"the bounded read of {member_id}'s expiring points differs from the full one")
    if len(expiring[hoarder]) != EARLY_LOTS:
        raise HistoryCheckFailed(f"the hoarder's {EARLY_LOTS} first lots are not the ones expiring soon")
    # as GET /v1/transactions lists: the transactions of other databases on the server read first, so
    # they do not hold the horizon back (another database's long transaction hid the shop's last entries)
    not_ours = network.tx(other_writers, readonly=True)
    everything = network.tx(lambda tx: partner_entries_page(tx, shop, None, 10**9, not_ours), readonly=True)
    if len(everything) <= PAGE:
        raise HistoryCheckFailed(f"the shop's transactions list {len(everything)} entries, not more than a page")
    last = (everything[-PAGE - 1].xid, everything[-PAGE - 1].id)  # the cursor position: (writing transaction, id)
    page = network.tx(lambda tx: partner_entries_page(tx, shop, last, PAGE + 1, not_ours), readonly=True)
    if [row.id for row in page] != [row.id for row in everything[-PAGE:]]:
        raise HistoryCheckFailed("the last page of the shop's transactions is not its last entries")
    jobs = {"hold_timeouts_pass_ms": lambda: network.expire_holds(),
            "reminder_pass_ms": lambda: remind_expiring(network),
            "status_pass_ms": lambda: recompute_statuses(network)}
    figures = {
        "member_read_open_lots_ms": _median_ms(lambda n: member_read(hoarder), SAMPLES),
        "member_read_no_history_ms": _median_ms(lambda n: member_read(newcomer), SAMPLES),
        "transactions_first_page_ms": _median_ms(lambda n: network.tx(
            lambda tx: partner_entries_page(tx, shop, None, PAGE + 1, not_ours), readonly=True), SAMPLES),
        "transactions_last_page_ms": _median_ms(lambda n: network.tx(
            lambda tx: partner_entries_page(tx, shop, last, PAGE + 1, not_ours), readonly=True), SAMPLES),
    }
    for name, job in jobs.items():
        figures[name] = _median_ms(lambda n, job=job: job(), JOB_SAMPLES)
    return {**figures, "shop_entries": len(everything), "holds": holds}
