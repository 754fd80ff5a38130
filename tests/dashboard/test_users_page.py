"""The Users page: its role column says so, a disabled user is marked in the page's language, and the
table is paged like every other table."""

from __future__ import annotations

import re

from sqlalchemy import update

from shared.access import users
from shared.models import StaffUser
from tests.dashboard.conftest import BASE


def rows_of(html: str) -> list[str]:
    return re.findall(r'<tr data-user="([^"]+)"', html)


def test_the_role_column_is_headed_role(client_as):
    html = client_as("operator").get(f"{BASE}/users").text
    header = html.split('data-testid="users"')[1].split("</thead>")[0]
    assert "<th>Role</th>" in header and "Status" not in header


def test_a_disabled_user_is_marked_in_the_pages_language(network, client_as, staff):
    network.tx(lambda tx: users.disable_user(tx, staff["finance"]))
    english = client_as("operator").get(f"{BASE}/users").text
    assert "(disabled)" in english.split(f'data-user="{staff["finance"]}"')[1].split("</tr>")[0]
    network.tx(lambda tx: tx.session.execute(update(StaffUser).where(StaffUser.email == staff["checker"])
                                             .values(language="zh")))
    chinese = client_as("checker").get(f"{BASE}/users").text
    finance_row = chinese.split(f'data-user="{staff["finance"]}"')[1].split("</tr>")[0]
    assert "(已停用)" in finance_row and "(disabled)" not in finance_row
    assert "<th>角色</th>" in chinese


def test_the_users_table_is_paged(network, client_as, staff):
    password = users.new_password("correct horse battery staple")
    for n in range(7):
        network.tx(lambda tx, n=n: users.add_user(tx, f"clerk{n}@example.org", "finance", password))
    client = client_as("operator")
    first = client.get(f"{BASE}/users", params={"limit": 5}).text
    assert len(rows_of(first)) == 5 and "1–5 of 11" in first and 'rel="next"' in first
    last = client.get(f"{BASE}/users", params={"limit": 5, "offset": 10}).text
    assert len(rows_of(last)) == 1 and 'rel="prev"' in last
    seen = rows_of(first) + rows_of(client.get(f"{BASE}/users", params={"limit": 5, "offset": 5}).text) + rows_of(last)
    assert sorted(seen) == seen and len(set(seen)) == 11  # every user once, in e-mail order
