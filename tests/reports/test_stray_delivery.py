"""Report sets are written for the network's cycles only, from its first cycle on
(``runs.of_the_network``, as the money figures and ``clearing list``): a settlement of an earlier day (a
"stray" one an earlier release made: a typo run by hand) gets no cycle set and makes no month, and an
open ``cycles`` row of such a day (an older merge, erasure or buy-out left it; it is never settled)
does not hold its month back."""

from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import insert

from shared.models import Cycle
from shared.reports.delivery import publish_due, reports_dir
from shared.settlement import runs
from tests.factories import make_member, make_partner

CYCLE = date(2026, 11, 20)  # the clock's first day: the network's first cycle
STRAY, OPEN_STRAY, STRAY_OCTOBER = date(2026, 11, 17), date(2026, 11, 18), date(2026, 10, 9)
TERMS = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")


def test_stray_settlements_and_open_rows_are_no_cycles_of_the_written_reports(network, clock, monkeypatch):
    coffee = make_partner(network, "CoffeeCo", **TERMS)
    network.earn(coffee, make_member(network, coffee), "c1", points=500)
    clock.advance(days=1)
    for stray in (STRAY_OCTOBER, STRAY):
        with monkeypatch.context() as old_release:  # what `clearing run --cycle <day>` did before
            old_release.setattr(runs, "first_cycle", lambda tx: stray)
            network.settle(stray)
    network.tx(lambda tx: tx.session.execute(insert(Cycle.__table__).values(cycle_date=OPEN_STRAY, status="open")))
    clock.set(datetime(2026, 12, 2, 3, 0, tzinfo=timezone.utc))  # November is over
    while network.settle_due():  # every day from the first cycle through 2026-12-01, the quiet ones too
        pass

    published = {"cycles": [], "months": []}
    while (written := publish_due(network))["cycles"] or written["months"]:
        published = {key: published[key] + written[key] for key in published}
    assert published["cycles"][:2] == ["2026-11-20", "2026-11-21"]
    assert STRAY.isoformat() not in published["cycles"] and STRAY_OCTOBER.isoformat() not in published["cycles"]
    assert published["months"] == ["2026-11"]  # no month of a stray day alone; the open row holds none back
    root = reports_dir(network)
    assert sorted(p.name for p in (root / "monthly").iterdir()) == ["2026-11"]
    assert not (root / "cycles" / STRAY.isoformat()).exists()
    assert not (root / "cycles" / STRAY_OCTOBER.isoformat()).exists()
