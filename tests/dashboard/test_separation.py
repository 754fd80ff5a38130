"""OWASP API5 (function-level authorization) between the partner API and the dashboard, served by
one process as `pointsnet serve` does: a partner's signature opens no dashboard page, and a
dashboard session calls no partner endpoint."""

from __future__ import annotations

import httpx

from tests.api.conftest import Partner
from tests.dashboard.conftest import PASSWORD


def test_a_signed_partner_request_opens_no_dashboard_page(network, live_dashboard):
    root = live_dashboard.removesuffix("/dashboard")
    partner = Partner(network, root, "Till Co")
    for path in ("/dashboard/", "/dashboard/audit", "/dashboard/users"):
        answer = partner.send(partner.build("GET", path))
        assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/login"


def test_a_dashboard_session_calls_no_partner_endpoint(network, live_dashboard, staff):
    root = live_dashboard.removesuffix("/dashboard")
    partner = Partner(network, root, "Till Co")
    member = partner.enrol(phone="+8613800000001")
    with httpx.Client(base_url=root) as browser:
        form = browser.get("/dashboard/login").text
        token = form.split('name="csrf_token" value="')[1].split('"')[0]
        signed_in = browser.post("/dashboard/login", headers={"origin": root},
                                 data={"email": staff["operator"], "password": PASSWORD, "csrf_token": token})
        assert signed_in.status_code == 303
        assert browser.get("/dashboard/").status_code == 200  # the session works where it belongs
        balance = browser.get(f"/v1/members/{member}/balance")
        earn = browser.post("/v1/earn", json={"member_id": member, "reference": "r1", "points": 10},
                            headers={"idempotency-key": "k1"})
    for answer in (balance, earn):
        assert answer.status_code == 401 and answer.headers["content-type"] == "application/problem+json"
    assert network.balance(member)["available"] == 0
