"""Member adjustments with maker-checker switched off for them: they run at once, audited, and a
form sent twice posts once (its request key)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import Settings
from tests.dashboard.conftest import BASE, post_form
from tests.dashboard.test_members import PHONE, EMAIL, adjustments, audited
from tests.factories import verify_ok


@pytest.fixture
def member(network, partners) -> str:
    member_id = network.enrol(partners["CoffeeCo"], phone=PHONE, email=EMAIL)["member_id"]
    network.earn(partners["CoffeeCo"], member_id, "e1", points=120)
    return member_id


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=Path(tmp_path) / "data", webhook_allow_private_targets=True,
                    dashboard_secure_cookies=False, four_eyes_actions=frozenset({"member_erasure"}))


def test_without_maker_checker_an_adjustment_runs_at_once_and_a_resubmitted_form_applies_once(network, client_as,
                                                                                             member):
    client = client_as("operator")
    page = f"{BASE}/members/{member}"
    form = {"points": "30", "reason": "goodwill", "request_key": "form-abc"}
    answer = post_form(client, f"{page}/adjustments", form, page=page)
    assert answer.status_code == 303 and "message=done" in answer.headers["location"]
    again = post_form(client, f"{page}/adjustments", form, page=page)  # the browser sends the same form again
    assert again.status_code == 409 and 'data-code="request_already_done"' in again.text
    assert network.balance(member)["available"] == 150 and adjustments(network, member) == 1
    assert len(audited(network, "member_adjustment", member)) == 1  # one posting, one adjustment audited
    verify_ok(network)
