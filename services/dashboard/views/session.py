"""Sign in, sign out, language."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from services.dashboard.i18n import LANGUAGES
from services.dashboard.render import page
from services.dashboard.security import (COOKIE, LANG_CHOSEN_COOKIE, LANG_COOKIE, LOGIN_CSRF_COOKIE, checked_form,
                                         checked_login_form, client_of, current_session, network_of,
                                         new_login_token, set_cookie)
from shared.access import audit, sessions, throttle, users
from shared.access.errors import CsrfRejected, LoginThrottled
from shared.models import StaffUser

router = APIRouter()


def home_of(role: str) -> str:
    return "/my-partner" if role == "partner_viewer" else "/"


@router.get("/login")
def login_page(request: Request):
    token = new_login_token()
    response = page(request, "login.html", login_csrf=token, failed=None)
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


@router.post("/login")
def login(request: Request, form: FormData = Depends(checked_login_form)):
    network = network_of(request)
    email, password, client = str(form.get("email", ""))[:320], str(form.get("password", ""))[:1024], client_of(request)

    key = email.strip().lower()
    picked = request.cookies.get(LANG_CHOSEN_COOKIE)  # a language picked on the sign-in page just now

    def attempt(tx):
        # The attempt counts as a failure before its password is checked (a success clears it), so
        # attempts in flight count too and a throttled one checks no password at all.
        throttle.admit(tx, key, client)
        return users.login_candidate(tx, email)

    def sign_in_as(tx, verified):
        user = users.confirm_login(tx, verified)
        if user is None or user is users.CHANGED:
            return user
        throttle.forget(tx, key)
        # a sign-in in a browser signed in already replaces its session: the one its cookie names ends,
        # as a sign-out would end it (its token, copied or kept, no longer opens a page)
        previous = sessions.resolve(tx, request.cookies.get(COOKIE))
        if previous is not None:
            sessions.revoke(tx, previous.token_hash)
            audit.record(tx, previous, "session.signed_out", None, client=client, replaced_by=user.email)
        actor = audit.Actor(user.id, user.email)
        audit.record(tx, actor, "session.signed_in", None, client=client)
        if picked in LANGUAGES and picked != user.language:  # picked for this sign-in: remembered
            previous, user.language = user.language, picked
            audit.record(tx, actor, "user.language_set", user.id, language=picked, previous=previous)
        return sessions.open_session(tx, user, client), user.role, user.language

    try:
        # Count the attempt, check the password with no transaction open (Argon2 never holds a
        # lock), then sign in; once more if the hash changed meanwhile.
        candidate = network.tx(attempt)
        for _check in range(2):
            verified = users.verify_password(candidate, password)
            outcome = network.tx(lambda tx: sign_in_as(tx, verified))
            if outcome is not users.CHANGED:
                break
            candidate = network.tx(lambda tx: users.login_candidate(tx, email), readonly=True)
        else:
            outcome = None
        if outcome is not None and (upgraded := users.upgraded_hash(verified, password)):
            network.tx(lambda tx: users.store_upgraded_hash(tx, verified, upgraded))
    except LoginThrottled as error:
        token = new_login_token()
        response = page(request, "login.html", status_code=429, login_csrf=token, failed=None, email=email,
                        refusal={"code": error.code, "detail": error.detail, "extra": error.extra})
        response.headers["Retry-After"] = str(error.extra.get("retry_after", 60))
        set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
        return response
    if outcome is None:
        token = new_login_token()
        # the e-mail address comes back as typed; the password never does (the field is empty)
        response = page(request, "login.html", status_code=401, login_csrf=token, failed="login.failed", email=email)
        set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
        return response
    token, role, language_of_user = outcome
    response = RedirectResponse((request.scope.get("root_path") or "") + home_of(role), status_code=303)
    set_cookie(request, response, COOKIE, token)
    # the user's language from now on, signed in (their stored choice wins) and after signing out
    set_cookie(request, response, LANG_COOKIE, language_of_user, max_age=365 * 24 * 3600)
    for name in (LOGIN_CSRF_COOKIE, LANG_CHOSEN_COOKIE):
        response.delete_cookie(name, path=(request.scope.get("root_path") or "") + "/")
    return response


def _to_sign_in(request: Request) -> RedirectResponse:
    """To the sign-in page, the session cookie dropped: what a form of a page whose session has ended
    (expired, revoked, signed out in another tab) leads to, instead of an error page."""
    response = RedirectResponse((request.scope.get("root_path") or "") + "/login", status_code=303)
    response.delete_cookie(COOKIE, path=(request.scope.get("root_path") or "") + "/")
    return response


@router.post("/logout")
async def logout(request: Request):
    """Sign out (CSRF-checked). Without a live session there is nobody to sign out: to the sign-in
    page, nothing done, nothing audited. (Async to read the form itself, as ``language`` does.)"""
    session = await run_in_threadpool(current_session, request)
    if session is None:
        return _to_sign_in(request)
    session, _form = await checked_form()(request, session)
    await run_in_threadpool(network_of(request).tx, lambda tx: (sessions.revoke(tx, session.token_hash),
                                                                audit.record(tx, session, "session.signed_out")))
    return _to_sign_in(request)


@router.post("/language")
async def language(request: Request):
    """Switch language. Signed in: remembered for the user (CSRF-checked); before sign-in: a cookie,
    and a second one for an hour (the sign-in form's life) that makes the sign-in remember it too.
    (Async to read the form itself; its database work runs in a worker thread, as a def endpoint's
    does, never on the event loop.)"""
    session = await run_in_threadpool(current_session, request)
    if session is not None:
        _session, form = await checked_form()(request, session)
    else:
        try:
            form = await checked_login_form(request)
        except CsrfRejected:
            if request.cookies.get(COOKIE):  # a signed-in page's form whose session has ended since
                return _to_sign_in(request)
            raise
    chosen = str(form.get("language", "en"))
    chosen = chosen if chosen in LANGUAGES else "en"
    if session is not None:
        def remember(tx):  # the change and its audit entry in one unit
            user = tx.session.get(StaffUser, session.user_id)
            previous, user.language = user.language, chosen
            audit.record(tx, session, "user.language_set", session.user_id, language=chosen, previous=previous)

        await run_in_threadpool(network_of(request).tx, remember)
    back = str(form.get("next", "/"))
    base = request.scope.get("root_path") or ""
    if not back.startswith("/") or back.startswith("//"):
        back = "/"
    target = back if back.startswith(base + "/") or back == base else base + back
    response = RedirectResponse(target, status_code=303)
    set_cookie(request, response, LANG_COOKIE, chosen, max_age=365 * 24 * 3600)
    if session is None:
        set_cookie(request, response, LANG_CHOSEN_COOKIE, chosen, max_age=3600)
    return response
