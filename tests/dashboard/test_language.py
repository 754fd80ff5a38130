"""Which language a page speaks (docs/dashboard.md, "Language"): signed in, the user's stored choice,
whatever cookie the browser still has; signed out, the browser's cookie; a language picked on the
sign-in page is remembered for the user who then signs in."""

from __future__ import annotations

import json

from sqlalchemy import select

from shared.access import users
from shared.models import AuditEntry, StaffUser
from tests.dashboard.conftest import BASE, csrf_of, make_client, post_form, sign_in

ENGLISH, CHINESE = "<h1>Network overview</h1>", "<h1>网络概览</h1>"
SIGN_IN_EN, SIGN_IN_ZH = "<h1>Pointsnet dashboard</h1>", "<h1>Pointsnet 管理后台</h1>"


def _store(network, email: str, language: str) -> None:
    def unit(tx):
        tx.session.execute(select(StaffUser).where(StaffUser.email == email)).scalar_one().language = language
    network.tx(unit)


def _stored(network, email: str) -> str:
    return network.tx(lambda tx: users.find_user(tx, email), readonly=True).language


def _language_changes(network) -> list[AuditEntry]:
    return network.tx(lambda tx: tx.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "user.language_set").order_by(AuditEntry.id)).all(), readonly=True)



def _cookie(client, name: str = "pointsnet_lang") -> list[str]:
    return [cookie.value for cookie in client.cookies.jar if cookie.name == name]


def _signed_in(network, staff, who: str, *, language: str | None = None):
    client = make_client(network)
    assert sign_in(client, staff[who]).status_code == 303
    if language:
        assert post_form(client, f"{BASE}/language", {"language": language, "next": "/"}).status_code == 303
    return client


def test_a_signed_in_users_stored_language_wins_over_a_stale_cookie(network, staff):
    here = _signed_in(network, staff, "operator", language="en")  # this browser's cookie says English
    elsewhere = _signed_in(network, staff, "operator", language="zh")  # then the user picks Chinese elsewhere
    try:
        assert _cookie(here) == ["en"] and _stored(network, staff["operator"]) == "zh"
        assert CHINESE in here.get(f"{BASE}/").text  # the stale cookie does not win
        assert CHINESE in elsewhere.get(f"{BASE}/").text
        assert post_form(here, f"{BASE}/logout").status_code == 303
        assert sign_in(here, staff["operator"]).status_code == 303
        assert CHINESE in here.get(f"{BASE}/").text and _cookie(here) == ["zh"]  # the browser follows the user
        # the two picks are audited; signing in changed nothing
        assert [json.loads(e.detail)["language"] for e in _language_changes(network)] == ["en", "zh"]
    finally:
        here.close()
        elsewhere.close()


def test_after_signing_out_the_sign_in_page_keeps_the_users_language(network, staff):
    here = _signed_in(network, staff, "finance", language="en")
    _store(network, staff["finance"], "zh")  # chosen since, on another machine
    try:
        assert post_form(here, f"{BASE}/logout").status_code == 303
        assert SIGN_IN_EN in here.get(f"{BASE}/login").text  # signed out: this browser's cookie
        assert sign_in(here, staff["finance"]).status_code == 303
        assert post_form(here, f"{BASE}/logout").status_code == 303
        assert SIGN_IN_ZH in here.get(f"{BASE}/login").text
    finally:
        here.close()


def test_signed_out_pages_follow_the_cookie(network, staff):
    client = make_client(network)
    try:
        assert SIGN_IN_EN in client.get(f"{BASE}/login").text
        client.cookies.set("pointsnet_lang", "zh")
        assert SIGN_IN_ZH in client.get(f"{BASE}/login").text
    finally:
        client.close()


def test_a_language_picked_on_the_sign_in_page_is_remembered_for_the_user(network, staff):
    client = make_client(network)
    try:
        form = client.get(f"{BASE}/login")
        picked = client.post(f"{BASE}/language", data={"language": "zh", "next": "/login",
                                                      "csrf_token": csrf_of(form.text)},
                             headers={"origin": "http://testserver"})
        assert picked.status_code == 303 and SIGN_IN_ZH in client.get(f"{BASE}/login").text
        assert sign_in(client, staff["operator"]).status_code == 303
        assert CHINESE in client.get(f"{BASE}/").text
        assert _stored(network, staff["operator"]) == "zh"
        [change] = _language_changes(network)
        assert change.user_email == staff["operator"] and '"zh"' in change.detail and '"en"' in change.detail
        assert _cookie(client, "pointsnet_lang_chosen") == []  # used up by this sign-in
    finally:
        client.close()
    # the next sign-in, elsewhere, with no pick of its own: the stored choice
    other = make_client(network)
    try:
        sign_in(other, staff["operator"])
        assert CHINESE in other.get(f"{BASE}/").text
    finally:
        other.close()


def test_a_stale_cookie_left_by_another_user_does_not_change_the_next_users_language(network, staff):
    client = make_client(network)
    try:
        sign_in(client, staff["operator"])
        assert post_form(client, f"{BASE}/language", {"language": "zh", "next": "/"}).status_code == 303
        assert post_form(client, f"{BASE}/logout").status_code == 303
        assert SIGN_IN_ZH in client.get(f"{BASE}/login").text  # the operator's language, signed out
        sign_in(client, staff["finance"])  # the next user of this browser picked nothing
        assert ENGLISH in client.get(f"{BASE}/").text
        assert _stored(network, staff["finance"]) == "en"
    finally:
        client.close()
