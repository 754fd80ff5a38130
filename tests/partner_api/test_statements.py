"""A partner's settlement statements through the API: the list (newest first, paginated), one
cycle's statement as JSON with its file's SHA-256, the file itself; another's cycle or a day the
partner was not settled in is 404 ``statement_not_found``."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import select

from shared.ledger.cycles import cycle_date_for
from shared.models import Settlement
from tests.partner_api.conftest import Partner, assert_problem, enrol


def settled_days(network, clock, shop, other, days: int) -> list:
    """``days`` cycles in which the shop issues points a member of both spends at the other partner."""
    member = enrol(shop)
    other.ok("POST", "/v1/members", {"link_token": shop.ok(
        "POST", f"/v1/members/{member}/link-tokens", {})["link_token"]})
    cycles = []
    for day in range(days):
        shop.ok("POST", "/v1/earn", {"reference": f"earn-{day}", "member_id": member, "points": 100 * (day + 1)})
        other.ok("POST", "/v1/burn", {"reference": f"burn-{day}", "member_id": member, "points": 50})
        cycles.append(cycle_date_for(clock.now(), network.settings))
        clock.advance(days=1)
    for cycle in cycles:
        network.settle(cycle)
    return cycles


def stored(network, party) -> dict:
    return {row.cycle_date.isoformat(): row.net_minor for row in network.tx(lambda tx: tx.session.execute(
        select(Settlement).where(Settlement.party == party)).scalars().all(), readonly=True)}


def test_the_list_pages_newest_first_through_every_settled_cycle(network, clock, shop, api):
    other = Partner(network, api)
    cycles = settled_days(network, clock, shop, other, 4)
    everything = shop.ok("GET", "/v1/statements")
    assert everything["next_cursor"] is None
    listed = [s["cycle_date"] for s in everything["statements"]]
    assert listed == [c.isoformat() for c in reversed(cycles)]
    assert {s["cycle_date"]: s["net_minor"] for s in everything["statements"]} == stored(network, shop.partner_id)
    for limit in (1, 3):
        seen, cursor = [], None
        while True:
            page = shop.ok("GET", "/v1/statements", params={"limit": limit, **({"cursor": cursor} if cursor else {})})
            assert len(page["statements"]) <= limit
            seen += [s["cycle_date"] for s in page["statements"]]
            if (cursor := page["next_cursor"]) is None:
                break
        assert seen == listed, limit
    assert_problem(shop.call("GET", "/v1/statements", params={"cursor": "bm90LWEtZGF0ZQ"}), 422, "validation_failed")


def test_one_statement_is_its_file_and_its_digest(network, clock, shop, api):
    other = Partner(network, api)
    [cycle] = settled_days(network, clock, shop, other, 1)
    one = shop.ok("GET", f"/v1/statements/{cycle.isoformat()}")
    csv = shop.call("GET", f"/v1/statements/{cycle.isoformat()}/statement.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert one["statement_csv"].encode() == csv.content
    assert one["statement_sha256"] == hashlib.sha256(csv.content).hexdigest()
    assert one["net_minor"] == stored(network, shop.partner_id)[cycle.isoformat()]
    assert (one["from_float_minor"], one["by_bank_minor"]) == (0, one["net_minor"])  # no float: all by bank
    assert shop.partner_id in one["statement_csv"] and other.partner_id not in one["statement_csv"].split("\n")[0]


def test_a_cycle_without_a_statement_for_you_is_not_found(network, clock, shop, api):
    other = Partner(network, api)
    [cycle] = settled_days(network, clock, shop, other, 1)
    outsider = Partner(network, api)  # settled in no cycle
    for path in (f"/v1/statements/{cycle.isoformat()}", f"/v1/statements/{cycle.isoformat()}/statement.csv"):
        assert_problem(outsider.call("GET", path), 404, "statement_not_found")
    later = (cycle + timedelta(days=30)).isoformat()
    assert_problem(shop.call("GET", f"/v1/statements/{later}"), 404, "statement_not_found")
    assert_problem(shop.call("GET", "/v1/statements/not-a-date"), 404, "statement_not_found")
    basic = cycle.isoformat().replace("-", "")  # the same day, not written YYYY-MM-DD: not a cycle's name
    assert_problem(shop.call("GET", f"/v1/statements/{basic}"), 404, "statement_not_found")
    assert outsider.ok("GET", "/v1/statements") == {"statements": [], "next_cursor": None}



def test_a_statement_shows_what_is_paid_and_outstanding_of_its_settlement(network, clock, shop, api):
    """Instalments recorded against a settlement (``clearing mark-paid --amount``) reach the partner: the list
    and one statement carry ``paid_minor`` and ``outstanding_minor``, as ``clearing list --json`` gives them."""
    from shared.settlement.finance import record_payment

    other = Partner(network, api)
    [cycle] = settled_days(network, clock, shop, other, 1)
    by_bank = shop.ok("GET", f"/v1/statements/{cycle.isoformat()}")["by_bank_minor"]
    assert by_bank < -1  # the shop pays by bank
    fields = ("status", "paid_minor", "outstanding_minor")

    def shown() -> tuple[tuple, tuple]:
        [listed] = shop.ok("GET", "/v1/statements")["statements"]
        one = shop.ok("GET", f"/v1/statements/{cycle.isoformat()}")
        return tuple(listed[f] for f in fields), tuple(one[f] for f in fields)

    assert shown() == (("due", 0, -by_bank),) * 2
    network.tx(lambda tx: record_payment(tx, cycle, shop.partner_id, "BK-1", amount_minor=1))
    assert shown() == (("due", 1, -by_bank - 1),) * 2
    network.tx(lambda tx: record_payment(tx, cycle, shop.partner_id, "BK-2"))
    assert shown() == (("paid", -by_bank, 0),) * 2
    [received] = other.ok("GET", "/v1/statements")["statements"]
    assert (received["paid_minor"], received["outstanding_minor"]) == (0, received["by_bank_minor"])
    summary = shop.http.get("/openapi.json").json()["components"]["schemas"]["StatementSummary"]
    assert {"paid_minor", "outstanding_minor"} <= set(summary["required"]) & set(summary["properties"])
