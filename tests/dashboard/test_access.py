"""Sign-in, sessions, roles and CSRF at the HTTP level."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from shared.access import sessions, throttle, users
from shared.models import AuditEntry, LoginFailure, StaffSession
from tests.dashboard.conftest import BASE, PASSWORD, csrf_of, make_client, post_form, sign_in


def audit_actions(network) -> list[str]:
    return network.tx(lambda tx: list(tx.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))),
                      readonly=True)


def test_sign_in_sets_a_strict_http_only_cookie_scoped_to_the_dashboard(network, staff):
    client = make_client(network)
    answer = sign_in(client, staff["operator"])
    assert answer.status_code == 303 and answer.headers["location"] == f"{BASE}/"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("pointsnet_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard/" in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    stored = network.tx(lambda tx: tx.session.scalars(select(StaffSession.token_hash)).all(), readonly=True)
    assert token not in stored and len(stored) == 1  # only the token's hash is kept
    assert client.get(f"{BASE}/").status_code == 200
    assert audit_actions(network) == ["session.signed_in"]


def test_a_secure_network_marks_the_cookie_secure(network, staff):
    network.settings.dashboard_secure_cookies = True
    answer = sign_in(make_client(network, "https://testserver"), staff["operator"])
    assert "Secure" in next(c for c in answer.headers.get_list("set-cookie") if c.startswith("pointsnet_session="))


def test_wrong_password_unknown_user_and_disabled_user_are_refused_alike(network, staff):
    client = make_client(network)
    for email, password in ((staff["operator"], "wrong password!"), ("nobody@example.org", PASSWORD)):
        answer = sign_in(client, email, password)
        assert answer.status_code == 401 and "Wrong e-mail or password." in answer.text
    network.tx(lambda tx: users.disable_user(tx, staff["finance"]))
    assert sign_in(client, staff["finance"]).status_code == 401
    assert client.get(f"{BASE}/", follow_redirects=False).headers["location"] == f"{BASE}/login"


def test_sign_in_is_throttled_after_repeated_failures(network, staff, clock):
    client = make_client(network)
    for _ in range(throttle.PER_EMAIL):
        assert sign_in(client, staff["operator"], "guessing...!!").status_code == 401
    refused = sign_in(client, staff["operator"])  # even the right password, for now
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    clock.advance(seconds=throttle.WINDOW.total_seconds() + 1)
    assert sign_in(client, staff["operator"]).status_code == 303


def test_sign_in_form_needs_its_csrf_token(network, staff):
    client = make_client(network)
    client.get(f"{BASE}/login")
    answer = client.post(f"{BASE}/login", data={"email": staff["operator"], "password": PASSWORD})
    assert answer.status_code == 403 and 'data-code="csrf_rejected"' in answer.text


def test_a_csrf_token_with_characters_beyond_ascii_is_refused_not_a_500(client_as, network, staff):
    """hmac.compare_digest refuses to compare str with non-ASCII characters (a TypeError, a 500): a
    forged token such as "é", in the sign-in form or a signed-in one, is csrf_rejected like any other."""
    client = make_client(network)
    client._transport.raise_server_exceptions = False
    client.get(f"{BASE}/login")
    answer = client.post(f"{BASE}/login", data={"email": staff["operator"], "password": PASSWORD, "csrf_token": "é"},
                         headers={"origin": "http://testserver"})
    assert answer.status_code == 403 and 'data-code="csrf_rejected"' in answer.text, answer.status_code
    operator = client_as("operator")
    operator._transport.raise_server_exceptions = False
    answer = operator.post(f"{BASE}/logout", data={"csrf_token": "é" * 43}, headers={"origin": "http://testserver"})
    assert answer.status_code == 403 and 'data-code="csrf_rejected"' in answer.text, answer.status_code


def test_forms_without_a_valid_token_or_from_another_origin_are_refused(client_as, network, staff):
    client = client_as("operator")
    target = network.tx(lambda tx: users.find_user(tx, staff["finance"]).id, readonly=True)
    path = f"{BASE}/users/{target}/sign-out"
    no_token = client.post(path, data={}, headers={"origin": "http://testserver"})
    wrong = client.post(path, data={"csrf_token": "x" * 43}, headers={"origin": "http://testserver"})
    html = client.get(f"{BASE}/users").text
    cross_site = client.post(path, data={"csrf_token": csrf_of(html)}, headers={"origin": "https://evil.example"})
    for answer in (no_token, wrong, cross_site):
        assert answer.status_code == 403 and 'data-code="csrf_rejected"' in answer.text
    assert "user.sessions_revoked" not in audit_actions(network)
    assert post_form(client, path, page=f"{BASE}/users").status_code == 303
    assert "user.sessions_revoked" in audit_actions(network)


def test_a_form_without_origin_is_refused_unless_its_referer_is_the_dashboard(client_as, network, staff):
    """Every state-changing request must come from the dashboard's own origin: a request without
    Origin needs a Referer of that origin (a browser that strips Origin still sends one)."""
    client = client_as("operator")
    target = network.tx(lambda tx: users.find_user(tx, staff["finance"]).id, readonly=True)
    path = f"{BASE}/users/{target}/sign-out"
    token = csrf_of(client.get(f"{BASE}/users").text)
    for headers in ({}, {"referer": "https://evil.example/dashboard/users"}, {"origin": "null"},
                    {"referer": "http://testserver.evil.example/dashboard/users"}):
        answer = client.post(path, data={"csrf_token": token}, headers=headers)
        assert answer.status_code == 403 and 'data-code="csrf_rejected"' in answer.text, headers
    assert "user.sessions_revoked" not in audit_actions(network)
    same_site = client.post(path, data={"csrf_token": token}, headers={"referer": f"http://testserver{BASE}/users"})
    assert same_site.status_code == 303
    assert "user.sessions_revoked" in audit_actions(network)


def test_a_signed_in_users_language_is_remembered_and_audited(client_as, network, staff):
    client = client_as("operator")
    answer = post_form(client, f"{BASE}/language", {"language": "zh", "next": "/"})
    assert answer.status_code == 303
    user = network.tx(lambda tx: users.find_user(tx, staff["operator"]), readonly=True)
    assert user.language == "zh"
    [entry] = network.tx(lambda tx: tx.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "user.language_set")).all(), readonly=True)
    assert (entry.user_email, entry.target) == (staff["operator"], user.id) and '"zh"' in entry.detail


@pytest.mark.parametrize("who, path, allowed", [
    ("operator", "/users", True), ("operator", "/approvals", True), ("operator", "/audit", True),
    ("finance", "/", True), ("finance", "/audit", True), ("finance", "/users", False), ("finance", "/approvals", False),
    ("viewer", "/", False), ("viewer", "/audit", False), ("viewer", "/users", False), ("viewer", "/approvals", False),
])
def test_roles_reach_only_their_pages(client_as, who, path, allowed):
    answer = client_as(who).get(BASE + path)
    assert answer.status_code == (200 if allowed else 403)
    if not allowed:
        assert 'data-code="forbidden"' in answer.text


def test_finance_cannot_use_an_operator_form_even_with_its_own_token(client_as, network, staff):
    client = client_as("finance")
    target = network.tx(lambda tx: users.find_user(tx, staff["operator"]).id, readonly=True)
    answer = post_form(client, f"{BASE}/users/{target}/sign-out")
    assert answer.status_code == 403 and 'data-code="forbidden"' in answer.text


def test_signing_out_everywhere_ends_other_sessions_at_their_next_request(client_as, network, staff):
    finance = client_as("finance")
    assert finance.get(f"{BASE}/").status_code == 200
    operator = client_as("operator")
    target = network.tx(lambda tx: users.find_user(tx, staff["finance"]).id, readonly=True)
    assert post_form(operator, f"{BASE}/users/{target}/sign-out", page=f"{BASE}/users").status_code == 303
    assert finance.get(f"{BASE}/").headers["location"] == f"{BASE}/login"


def test_sign_out_ends_the_session_server_side(client_as, network):
    client = client_as("operator")
    token = client.cookies.get("pointsnet_session")
    assert post_form(client, f"{BASE}/logout").status_code == 303
    replayed = make_client(network)
    replayed.cookies.set("pointsnet_session", token, path="/dashboard/")
    assert replayed.get(f"{BASE}/").headers["location"] == f"{BASE}/login"


def _sign_in_again(client, email: str, password: str = PASSWORD):
    """The sign-in form of a browser signed in already: its page also holds the session's forms (language,
    sign-out), so the login form's own token is the one after its action."""
    form = client.get(f"{BASE}/login").text
    token = re.search(r'action="/dashboard/login">\s*<input type="hidden" name="csrf_token" value="([^"]+)"',
                      form).group(1)
    return client.post(f"{BASE}/login", data={"email": email, "password": password, "csrf_token": token},
                       headers={"origin": "http://testserver"})


def test_signing_in_again_in_the_same_browser_ends_the_session_it_replaces(network, staff):
    """Until 2026-12-07 a sign-in as another user (or the same) in a browser signed in already opened a new
    session and left the one its cookie named live for up to 12 hours: a copy of that token still opened
    pages. A failed sign-in ends nothing."""
    client = make_client(network)
    assert sign_in(client, staff["operator"]).status_code == 303
    first = client.cookies.get("pointsnet_session")
    assert _sign_in_again(client, staff["finance"], password="wrong").status_code == 401
    kept = make_client(network)
    kept.cookies.set("pointsnet_session", first, path="/dashboard/")
    assert kept.get(f"{BASE}/users").status_code == 200  # a failed attempt left it alone

    assert _sign_in_again(client, staff["finance"]).status_code == 303
    assert client.cookies.get("pointsnet_session") != first and client.get(f"{BASE}/").status_code == 200
    assert kept.get(f"{BASE}/users").headers["location"] == f"{BASE}/login"
    entries = network.tx(lambda tx: tx.session.execute(select(AuditEntry.user_email, AuditEntry.action, AuditEntry.detail)
                                                        .order_by(AuditEntry.id)).all(), readonly=True)
    ended = [(email, detail) for email, action, detail in entries if action == "session.signed_out"]
    assert len(ended) == 1 and ended[0][0] == staff["operator"] and staff["finance"] in ended[0][1], ended


def test_sessions_expire_when_idle_and_after_their_lifetime(client_as, clock):
    client = client_as("operator")
    clock.advance(seconds=(sessions.IDLE - timedelta(minutes=1)).total_seconds())
    assert client.get(f"{BASE}/").status_code == 200  # and touched
    clock.advance(seconds=(sessions.IDLE + sessions.TOUCH_EVERY).total_seconds() + 1)
    assert client.get(f"{BASE}/").status_code == 303
    client = client_as("operator")
    started, step = clock.now(), sessions.IDLE - timedelta(minutes=1)
    while client.get(f"{BASE}/audit").status_code == 200:
        assert clock.now() - started <= sessions.LIFETIME, "a session outlived its lifetime"
        clock.advance(seconds=step.total_seconds())
    assert clock.now() - started > sessions.LIFETIME - step  # it was the lifetime, not idleness, that ended it


def test_a_session_never_ends_before_30_minutes_without_a_request(client_as, clock):
    """last_seen_at is written at most once a minute (TOUCH_EVERY), so a request within that minute is
    not recorded: the session is kept until IDLE + TOUCH_EVERY after the recorded one, never less than
    IDLE after the last request, and it does end then."""
    client = client_as("operator")
    clock.advance(seconds=59)
    assert client.get(f"{BASE}/").status_code == 200  # a request not written down (within the minute)
    clock.advance(seconds=(sessions.IDLE - timedelta(seconds=1)).total_seconds())
    assert client.get(f"{BASE}/").status_code == 200, "ended before 30 minutes without a request"
    clock.advance(seconds=(sessions.IDLE + sessions.TOUCH_EVERY).total_seconds() + 1)
    assert client.get(f"{BASE}/").headers["location"] == f"{BASE}/login"


def test_users_are_validated(network, partners):
    from shared.access.errors import InvalidUser

    cases = [("a@example.org", "admin", "x" * 12, None), ("a@example.org", "operator", "short", None),
             ("a@example.org", "partner_viewer", "x" * 12, None), ("a@example.org", "finance", "x" * 12, partners["CoffeeCo"]),
             ("a@example.org", "partner_viewer", "x" * 12, "par_nonexistent"), ("not-an-address", "operator", "x" * 12, None)]
    for email, role, password, partner in cases:
        with pytest.raises(InvalidUser):
            network.tx(lambda tx: users.add_user(tx, email, role, users.new_password(password), partner_id=partner))
    network.tx(lambda tx: users.add_user(tx, "A@Example.org", "operator", users.new_password("x" * 12)))
    with pytest.raises(InvalidUser):
        network.tx(lambda tx: users.add_user(tx, "a@example.org", "finance", users.new_password("y" * 12)))
    hashed = network.tx(lambda tx: users.find_user(tx, "a@example.org").password_hash, readonly=True)
    assert hashed.startswith("$argon2id$")


def test_security_headers_on_every_page(client_as):
    answer = client_as("operator").get(f"{BASE}/")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert answer.headers["x-frame-options"] == "DENY" and answer.headers["cache-control"] == "no-store"


def test_security_headers_on_a_server_error_page_too(client_as, monkeypatch):
    """A page that fails unexpectedly answers 500 with the same headers as every page (the error page
    is made outside the pages' own middleware), and without the error's internals."""
    from shared.partners import directory

    def broken(*_args, **_kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(directory, "partners_page", broken)
    client = client_as("operator")
    client._transport.raise_server_exceptions = False
    answer = client.get(f"{BASE}/partners")
    assert answer.status_code == 500 and "secret internals" not in answer.text
    assert "frame-ancestors 'none'" in answer.headers.get("content-security-policy", "")
    assert answer.headers.get("x-frame-options") == "DENY" and answer.headers.get("cache-control") == "no-store"
    assert answer.headers.get("x-content-type-options") == "nosniff"


def test_production_hashing_parameters():
    """Outside these tests passwords are hashed with argon2-cffi's default profile (RFC 9106 low memory)."""
    import importlib

    from argon2 import profiles

    fresh = importlib.reload(users)  # undo the tests' cheap hasher for this module object
    assert fresh._hasher.type.name == "ID"
    assert (fresh._hasher.time_cost, fresh._hasher.memory_cost) == (profiles.RFC_9106_LOW_MEMORY.time_cost,
                                                                   profiles.RFC_9106_LOW_MEMORY.memory_cost)


class _HeldHasher:
    """The tests' hasher, whose first verify waits until the test lets it go on: a sign-in caught in
    the middle of checking its password. Counts every verify and hash."""

    def __init__(self, real):
        self.real, self.checking, self.go_on = real, threading.Event(), threading.Event()
        self.verified = self.hashed = 0

    def verify(self, stored, password):
        self.verified += 1
        if self.verified == 1:
            self.checking.set()
            assert self.go_on.wait(60)
        return self.real.verify(stored, password)

    def hash(self, password):
        self.hashed += 1
        return self.real.hash(password)

    def __getattr__(self, name):
        return getattr(self.real, name)


def _sign_in_held(network, monkeypatch, email, password=PASSWORD):
    """Start a sign-in and stop it while its password is checked; returns (hasher, thread, answers)."""
    hasher, answers = _HeldHasher(getattr(users._hasher, "real", users._hasher)), []
    monkeypatch.setattr(users, "_hasher", hasher)
    client = make_client(network)
    thread = threading.Thread(target=lambda: answers.append(sign_in(client, email, password)), daemon=True)
    thread.start()
    assert hasher.checking.wait(30)
    return hasher, thread, answers


def _finish(hasher, thread, answers):
    hasher.go_on.set()
    thread.join(30)
    assert answers, "the held sign-in did not finish"
    return answers[0]


def test_checking_a_password_holds_no_lock_that_other_writers_need(network, staff, monkeypatch):
    """Argon2 is slow by design; on SQLite a sign-in checking it inside its write transaction held
    the lock every partner request needs (and a guesser could hold it again and again). On
    PostgreSQL writers never waited for it."""
    held = _sign_in_held(network, monkeypatch, staff["operator"])
    wrote = []
    writer = threading.Thread(target=lambda: wrote.append(network.create_partner("Meanwhile")), daemon=True)
    writer.start()
    writer.join(15)  # well within the held check (60 s)
    assert wrote, "a write waited for a sign-in's password check"
    assert _finish(*held).status_code == 303


def test_a_user_disabled_or_given_a_new_password_during_the_check_is_refused(network, staff, monkeypatch):
    brand_new = users.new_password("a brand new one")
    for email, change in ((staff["finance"], lambda tx: users.disable_user(tx, staff["finance"])),
                          (staff["operator"], lambda tx: users.set_password(tx, staff["operator"], brand_new))):
        held = _sign_in_held(network, monkeypatch, email)  # with the password that was right until now
        network.tx(change)
        assert _finish(*held).status_code == 401
    assert sign_in(make_client(network), staff["operator"], "a brand new one").status_code == 303


def test_attempts_count_before_their_password_is_checked(network, staff, monkeypatch):
    """Attempts in flight count toward the throttle, and a throttled attempt checks no password."""
    held = _sign_in_held(network, monkeypatch, staff["operator"])  # the right password, held
    hasher = held[0]
    for _ in range(throttle.PER_EMAIL - 1):
        assert sign_in(make_client(network), staff["operator"], "guessing...!!").status_code == 401
    checked = hasher.verified
    refused = sign_in(make_client(network), staff["operator"], "one guess too many")  # the held one counted
    assert refused.status_code == 429 and hasher.verified == checked
    assert _finish(*held).status_code == 303  # admitted before the limit; its success clears the failures
    assert sign_in(make_client(network), staff["operator"]).status_code == 303


def _store_an_older_hash(network, email):
    """The user's password hashed with weaker parameters than today's, as before an upgrade."""
    older = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, hash_len=16, salt_len=8)
    network.tx(lambda tx: setattr(users.find_user(tx, email), "password_hash", older.hash(PASSWORD)))


def test_two_sign_ins_at_once_while_the_hash_is_upgraded_both_succeed(network, staff, monkeypatch):
    _store_an_older_hash(network, staff["operator"])
    held = _sign_in_held(network, monkeypatch, staff["operator"])  # checked against the old hash, held
    assert sign_in(make_client(network), staff["operator"]).status_code == 303  # upgrades the hash meanwhile
    assert held[0].hashed == 1
    assert _finish(*held).status_code == 303  # checks again against the upgraded hash
    assert network.tx(lambda tx: tx.session.scalars(select(LoginFailure)).all(), readonly=True) == []


def test_an_old_hash_is_replaced_by_one_with_todays_parameters_at_sign_in(network, staff):
    _store_an_older_hash(network, staff["operator"])
    assert sign_in(make_client(network), staff["operator"]).status_code == 303
    stored = network.tx(lambda tx: users.find_user(tx, staff["operator"]).password_hash, readonly=True)
    assert not users._hasher.check_needs_rehash(stored) and users._hasher.verify(stored, PASSWORD)


def test_two_attempts_at_once_cannot_both_pass_the_last_place_under_the_limit(network, staff, monkeypatch):
    """Each admission reads the count, then records the attempt. Two attempts for one address are
    admitted one at a time (SQLite's one writer; an advisory lock on PostgreSQL), so with one place
    left under the limit exactly one gets through."""
    for _ in range(throttle.PER_EMAIL - 1):
        network.tx(lambda tx: throttle.record_failure(tx, staff["operator"], "10.0.0.9"))
    both_counted, record = threading.Barrier(2, timeout=3), throttle.record_failure

    def record_when_both_counted(tx, email, client):  # holds each admission open after its count
        try:
            both_counted.wait()
        except threading.BrokenBarrierError:  # the other attempt waits for this one: as it should
            pass
        record(tx, email, client)

    monkeypatch.setattr(throttle, "record_failure", record_when_both_counted)
    answers = []
    guessers = [threading.Thread(target=lambda: answers.append(
        sign_in(make_client(network), staff["operator"], "guessing...!!").status_code), daemon=True) for _ in range(2)]
    for guesser in guessers:
        guesser.start()
    for guesser in guessers:
        guesser.join(60)
    assert sorted(answers) == [401, 429]
    counted = network.tx(lambda tx: len(tx.session.scalars(select(LoginFailure)).all()), readonly=True)
    assert counted == throttle.PER_EMAIL


@pytest.mark.parametrize("form, data", [("logout", {}), ("language", {"language": "zh", "next": "/"})])
@pytest.mark.parametrize("sign_in_page_open", [False, True])
def test_signing_out_or_switching_language_after_the_session_expired_goes_to_the_sign_in_page(
        client_as, network, staff, clock, form, data, sign_in_page_open):
    """The page was open when the session expired: its form answered 401 (sign out) or 403
    csrf_rejected (language) instead of taking the browser to the sign-in page."""
    client = client_as("operator")
    token = csrf_of(client.get(f"{BASE}/").text)
    clock.advance(seconds=(sessions.IDLE_LIMIT + timedelta(seconds=1)).total_seconds())
    if sign_in_page_open:  # in another tab: the browser holds a sign-in form's token cookie too
        assert client.get(f"{BASE}/login").status_code == 200
    before = audit_actions(network)
    answer = client.post(f"{BASE}/{form}", data={"csrf_token": token} | data, headers={"origin": "http://testserver"})
    assert answer.status_code == 303 and answer.headers["location"] == f"{BASE}/login", answer.text[-300:]
    assert audit_actions(network) == before  # nobody was signed in: nothing done, nothing audited
    assert network.tx(lambda tx: users.find_user(tx, staff["operator"]).language, readonly=True) == "en"
    assert client.get(f"{BASE}/login").status_code == 200


def test_signing_out_an_unknown_user_everywhere_is_refused_and_not_audited(client_as, network):
    client = client_as("operator")
    answer = post_form(client, f"{BASE}/users/usr_nobody/sign-out", page=f"{BASE}/users")
    assert answer.status_code == 404 and 'data-code="unknown_user"' in answer.text, answer.status_code
    assert "user.sessions_revoked" not in audit_actions(network)
