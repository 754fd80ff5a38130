"""Nothing personal leaves the network in its logs, settlement files or reports: after a busy day
through the partner API (enrolments, a refused contact, links, earns, burns, holds, an erasure,
a settlement), no phone (in any format) or email appears; members are named by id only."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from sqlalchemy import select

from shared.models import Entry
from shared.programme.status import status_counts
from shared.programme.summary import member_summary
from tests.members.test_privacy import PEOPLE, assert_no_plaintext
from tests.partner_api.conftest import api, partners, serve  # noqa: F401  (fixtures)


def test_logs_settlement_files_and_reports_hold_no_contact(network, clock, partners, caplog):
    caplog.set_level(logging.DEBUG)
    coffee, books = partners("CoffeeCo"), partners("BookMart")
    members = []
    for n, (phone, national, email, name) in enumerate(PEOPLE):
        body = {"phone": national if n % 2 else phone, "email": email, "name": name, "customer_ref": f"C-{n}"}
        members.append(coffee.ok("POST", "/v1/members", body)["member_id"])
    # refusals that carry the contact in the request: an invalid phone, an email enrolled elsewhere
    coffee.call("POST", "/v1/members", {"phone": PEOPLE[0][1] + "99999", "email": "broken@@example"})
    books.call("POST", "/v1/members", {"phone": PEOPLE[0][0]})
    token = coffee.ok("POST", f"/v1/members/{members[0]}/link-tokens", {})["link_token"]
    books.ok("POST", "/v1/members", {"link_token": token})
    for n, member in enumerate(members):
        coffee.ok("POST", "/v1/earn", {"member_id": member, "reference": f"earn-{n}", "points": 500})
        clock.advance(minutes=1)
    books.ok("POST", "/v1/burn", {"member_id": members[0], "reference": "burn-0", "points": 200})
    hold = coffee.ok("POST", "/v1/holds", {"member_id": members[1], "reference": "hold-1", "points": 100})
    coffee.ok("POST", f"/v1/holds/{hold['hold_id']}/capture", {"reference": "cap-1"})
    coffee.call("GET", f"/v1/members/{members[0]}")
    coffee.call("GET", f"/v1/members/{members[0]}/history")
    network.erase_member(members[2], reason="request 7")

    cycles = network.tx(lambda tx: tx.session.execute(select(Entry.cycle_date).distinct()).scalars().all(),
                        readonly=True)
    clock.advance(days=2)
    settled = [network.settle(cycle) for cycle in sorted(cycles)]
    # the message and every structured field a JSON log line would carry
    outputs = [caplog.text.encode()] + [json.dumps(record.__dict__, default=str).encode() for record in caplog.records]
    assert caplog.records, "the busy day should have logged something to search"
    files = [path for result in settled for path in Path(result["directory"]).rglob("*")
             if path.is_file()]
    assert files, "settlement files expected"
    outputs += [path.read_bytes() for path in files]
    reports = network.tx(lambda tx: [member_summary(tx, m) for m in members[:2]] + [status_counts(tx)],
                         readonly=True)
    outputs.append(json.dumps(reports, default=str).encode())
    for output in outputs:
        assert_no_plaintext(output)
    # members appear by their opaque id
    assert any(members[0].encode() in output for output in outputs)
