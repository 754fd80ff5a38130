"""Who was linked to a partner when: a merge keeps the person's earliest link, an erasure ends the links.

docs/reports.md, "members" (`linked`, `newly_linked`, `status_mix`), and docs/programme.md, "Merging
duplicate members".
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from shared.members.consent import unlink
from shared.models import MemberLink
from shared.programme.merge import merge_members
from shared.reports.members import active_members
from shared.reports.partner import partner_report
from shared.reports.period import Period
from tests.factories import make_member, make_partner
from tests.reports.conftest import TERMS

NOV20, NOV22 = Period(date(2026, 11, 20), date(2026, 11, 20)), Period(date(2026, 11, 22), date(2026, 11, 22))
NOV25 = Period(date(2026, 11, 25), date(2026, 11, 25))


def at(day: int, month: int = 11) -> datetime:
    return datetime(2026, month, day, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai


def members(network, partner, period):
    return network.tx(lambda tx: partner_report(tx, partner, period), readonly=True)["members"]


def linked(network, partner, period):
    found = members(network, partner, period)
    return found["linked"], found["newly_linked"], sum(found["status_mix"].values())


def test_merge_keeps_the_person_linked_in_a_past_period(network, clock):
    """Both records linked to the shop: the survivor's kept link takes the duplicate's earlier linked_at
    (and keeps its own customer_ref), so the person was linked since the duplicate's link, and is not
    newly linked again on the survivor's own later link's day."""
    shop, other = make_partner(network, "Shop", **TERMS), make_partner(network, "Other", **TERMS)
    dup = make_member(network, shop)
    network.earn(shop, dup, "e1", points=100)
    clock.set(at(25))
    surv = make_member(network, other, also_linked_to=(shop,))
    assert linked(network, shop, NOV20) == (1, 1, 1)
    assert linked(network, shop, NOV25) == (2, 1, 2)
    network.tx(lambda tx: merge_members(tx, surv, dup))
    assert linked(network, shop, NOV20) == (1, 1, 1)
    assert members(network, shop, NOV20)["active"] == 1
    assert linked(network, shop, NOV25) == (1, 0, 1)  # linked since 11-20: not newly linked on 11-25
    assert network.tx(lambda tx: active_members(tx, NOV20), readonly=True) == 1
    link = network.tx(lambda tx: tx.session.get(MemberLink, (shop, surv)), readonly=True)
    assert link.linked_at == at(20)


def test_merge_onto_a_survivor_that_withdrew_later(network, clock):
    """The duplicate linked on 11-20; the survivor linked on 11-22 and withdrew on 11-23; the merge moves
    the duplicate's link onto the survivor. The person was linked all along since 11-20: its withdrawn
    link of 11-22 began while it was linked already, so 11-22 has no newly linked person."""
    shop, other = make_partner(network, "Shop", **TERMS), make_partner(network, "Other", **TERMS)
    dup = make_member(network, shop)
    clock.set(at(22))
    surv = make_member(network, other, also_linked_to=(shop,))
    clock.set(at(23))
    network.tx(lambda tx: unlink(tx, shop, surv, requested_by="partner"))
    clock.set(at(25))
    assert linked(network, shop, NOV22) == (2, 1, 2)
    network.tx(lambda tx: merge_members(tx, surv, dup))
    assert linked(network, shop, NOV20) == (1, 1, 1)
    assert linked(network, shop, NOV22) == (1, 0, 1)
    assert linked(network, shop, NOV25) == (1, 0, 1)
    assert linked(network, shop, Period(date(2026, 11, 20), date(2026, 11, 25))) == (1, 1, 1)


def test_erased_member_in_a_later_period(network, clock):
    """An erased member keeps its link row (the partner is answered member_erased), but its link ends at
    its erasure: it counts in the periods before, in none after."""
    shop = make_partner(network, "Shop", **TERMS)
    erased, gone, kept = (make_member(network, shop) for _ in range(3))
    network.earn(shop, erased, "e1", points=100)
    clock.set(at(22))
    network.erase_member(erased)
    network.tx(lambda tx: unlink(tx, shop, gone, requested_by="partner"))
    clock.set(at(5, 12))
    assert linked(network, shop, Period(date(2026, 12, 1), date(2026, 12, 4))) == (1, 0, 1)
    assert linked(network, shop, NOV22) == (1, 0, 1)  # erased and withdrawn that day
    assert linked(network, shop, NOV20) == (3, 3, 3)  # before: as it was
    assert members(network, shop, NOV20)["active"] == 1
    assert network.tx(lambda tx: active_members(tx, NOV20), readonly=True) == 1
    assert network.tx(lambda tx: active_members(tx, NOV22), readonly=True) == 0
