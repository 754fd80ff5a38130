"""A page's notice comes from ``?message=``, which the redirect after an action sets. Only the notices the
dashboard knows are shown: any other text in the address is shown nowhere, so a link sent to an operator
cannot put its own words in a notice on the network's page."""

from __future__ import annotations

import pytest

from tests.dashboard.conftest import BASE
from tests.dashboard.test_members import member  # noqa: F401 - the fixture


@pytest.fixture
def pages(partners, member):  # noqa: F811
    partner = partners["CoffeeCo"]
    return [f"{BASE}/members/{member}", f"{BASE}/partners/{partner}", f"{BASE}/partners/{partner}/keys",
            f"{BASE}/partners/{partner}/webhooks", f"{BASE}/partners/{partner}/rules",
            f"{BASE}/partners/network-rules"]


def test_only_a_known_notice_is_shown(client_as, pages):
    client = client_as("operator")
    for path in pages:
        known = client.get(path, params={"message": "done"})
        assert known.status_code == 200 and 'data-message="done"' in known.text and "Done." in known.text, path
        made_up = client.get(path, params={"message": "Your account is locked: call +1 555 0100"})
        assert made_up.status_code == 200, path
        assert "data-message" not in made_up.text and "call +1 555 0100" not in made_up.text, path
