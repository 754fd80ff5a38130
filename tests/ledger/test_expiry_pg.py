"""PostgreSQL's expiry path (shared/ledger/expiry_pg.py) writes exactly the rows of the generic path.

Both paths run over the same ledger, each in a transaction that is then rolled back, and every row
they wrote or changed is compared, with the ids each run makes itself (entries, consumptions, lines,
transfers, webhook deliveries) replaced by what they stand for.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from shared.ledger.expiry import expire_batch
from shared.models import Entry, Lot, LotConsumption, Member, ObligationLine, Transfer, WebhookDelivery
from shared.webhooks.endpoints import set_endpoint
from tests.factories import make_member, make_partner, verify_ok

pytestmark = pytest.mark.postgres


class RolledBack(Exception):
    def __init__(self, rows):
        self.rows = rows


def _expire_and_read(network, *, in_sql: bool, batch_size: int) -> dict:
    def unit(tx):
        expired = 0
        while done := expire_batch(tx, batch_size, in_sql=in_sql):
            expired += done
        session = tx.session
        entries = session.execute(select(Entry).where(Entry.kind == "expiry")).scalars().all()
        name = {e.id: f"expiry of {e.member_id}" for e in entries}

        def named(text: str) -> str:
            for entry_id, label in name.items():
                text = text.replace(entry_id, label)
            return text

        rows = {
            "expired": expired,
            "entries": sorted((name[e.id], e.kind, e.partner_id, e.member_id, e.reference, e.points, e.cycle_date,
                               e.posted_at, e.occurred_at, e.original_entry_id, e.hold_id, json.loads(e.request),
                               json.loads(named(e.result))) for e in entries),
            "consumptions": sorted((name[c.entry_id], c.seq, c.lot_id, c.points) for c in session.execute(
                select(LotConsumption).where(LotConsumption.entry_id.in_(list(name)))).scalars()),
            "lines": sorted((name[l.entry_id], l.cycle_date, l.payer, l.payee, l.kind, l.points, l.amount_micro,
                             l.contract_id, l.lot_id, l.original_line_id) for l in session.execute(
                select(ObligationLine).where(ObligationLine.entry_id.in_(list(name)))).scalars()),
            "transfers": sorted((name[t.entry_id], t.debit_account, t.credit_account, t.points) for t in session.execute(
                select(Transfer).where(Transfer.entry_id.in_(list(name)))).scalars()),
            "lots": sorted((lot.id, lot.remaining, lot.reserved, lot.expires_at) for lot in
                           session.execute(select(Lot)).scalars()),
            "members": sorted((m.id, m.available, m.held) for m in session.execute(select(Member)).scalars()),
            "webhooks": sorted((d.partner_id, d.endpoint_id, d.event_type, named(d.body), d.status) for d in
                               session.execute(select(WebhookDelivery).where(
                                   WebhookDelivery.event_type == "points.expired")).scalars()),
        }
        raise RolledBack(rows)

    with pytest.raises(RolledBack) as caught:
        network.tx(unit)
    return caught.value.rows


@pytest.mark.parametrize("batch_size", [2, 5000])
def test_the_sql_path_writes_the_generic_paths_rows(network, clock, batch_size):
    pre = make_partner(network, "Pre", billing="prepaid", point_value="0.333333", breakage_share="0.333333")
    post = make_partner(network, "Post", billing="postpaid", point_value="1")
    silent = make_partner(network, "Silent", billing="postpaid", point_value="1")  # no webhook endpoint
    for partner in (pre, post):
        network.tx(lambda tx, p=partner: set_endpoint(tx, p, f"http://127.0.0.1:9/hooks/{p}"))
    members = [make_member(network, pre, also_linked_to=(post, silent)) for _ in range(6)]
    network.settings.expiry_policy = "days:10"
    for n, member in enumerate(members):
        for k in range(n + 1):
            network.earn(pre, member, f"p{n}-{k}", points=7 * (k + 1) + n)
            network.earn(post, member, f"q{n}-{k}", points=11 * (k + 1) + n)
            # a network-funded lot issued and expiring at the very same instant as the earns':
            # consumption order falls back to the lot ids
            network.grant_bonus(member, 3 + k, reason="welcome", partner_id=post, reference=f"b{n}-{k}")
            clock.advance(seconds=1)
    network.burn(post, members[2], "spent", 20)  # lots partly spent
    network.hold(pre, members[3], "held", 9)  # points held do not expire
    network.hold(pre, members[0], "all-held", network.balance(members[0])["available"])  # nothing free at all
    network.settings.expiry_policy = "days:30"
    network.earn(post, members[4], "later", points=50)  # not due yet
    clock.advance(days=11)

    generic = _expire_and_read(network, in_sql=False, batch_size=batch_size)
    in_sql = _expire_and_read(network, in_sql=True, batch_size=batch_size)

    assert generic["expired"] > 0 and generic["lines"] and generic["webhooks"]
    assert len(generic["entries"]) == len(members) - 1  # member 0 has nothing free to expire
    for table in generic:
        assert in_sql[table] == generic[table], table
    verify_ok(network)  # both were rolled back
    assert network.expire_lots() == generic["expired"]
    verify_ok(network)
