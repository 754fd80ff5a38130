"""Who is asking: the session cookie, roles, partner scope and CSRF tokens.

The session cookie is HttpOnly, SameSite=Strict, scoped to the dashboard's path, and holds a
random token whose hash the database keeps (shared.access.sessions). Every form carries the
session's CSRF token (synchronizer token); the sign-in form, which has no session yet, a
double-submit token from its own cookie.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import parse_qsl, urlsplit

from fastapi import Depends, Request
from starlette.datastructures import FormData

from shared.access import sessions
from shared.access.errors import CsrfRejected, Forbidden, NotSignedIn
from shared.access.sessions import Session
from shared.errors import ValidationFailed

COOKIE = "pointsnet_session"
LOGIN_CSRF_COOKIE = "pointsnet_login_csrf"
LANG_COOKIE = "pointsnet_lang"
LANG_CHOSEN_COOKIE = "pointsnet_lang_chosen"  # a language picked on the sign-in page, for that sign-in
MAX_FORM_BYTES = 2 * 1024 * 1024


def network_of(request: Request):
    return request.app.state.network


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def cookie_path(request: Request) -> str:
    return (request.scope.get("root_path") or "") + "/"


def set_cookie(request: Request, response, name: str, value: str, *, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path=cookie_path(request), httponly=True, samesite="strict",
                        secure=network_of(request).settings.dashboard_secure_cookies)


def current_session(request: Request) -> Session | None:
    if not hasattr(request.state, "staff"):
        token = request.cookies.get(COOKIE)
        request.state.staff = network_of(request).tx(lambda tx: sessions.resolve(tx, token)) if token else None
    return request.state.staff


def signed_in(request: Request) -> Session:
    session = current_session(request)
    if session is None:
        raise NotSignedIn("sign in to use the dashboard")
    return session


def require(*roles: str):
    """A dependency: the signed-in user, who must have one of these roles."""

    def dependency(session: Session = Depends(signed_in)) -> Session:
        if session.role not in roles:
            raise Forbidden(f"the {session.role} role may not do this")
        return session

    return dependency


def ensure_partner(session: Session, partner_id: str) -> None:
    """A partner_viewer sees one partner only (object-level authorization)."""
    if session.role == "partner_viewer" and session.partner_id != partner_id:
        raise Forbidden("a partner viewer sees only their own partner")


def _same_origin(request: Request) -> bool:
    """The request comes from the dashboard's own origin: its ``Origin`` names this host, or, from
    a browser that left ``Origin`` out, its ``Referer`` does. Neither: refused."""
    host = request.headers.get("host", "")
    origin = request.headers.get("origin")
    if origin is None:
        referer = urlsplit(request.headers.get("referer", ""))
        return bool(host) and referer.scheme in ("http", "https") and referer.netloc == host
    if origin == "null":  # a sandboxed or opaque origin
        return False
    return bool(host) and origin.split("://", 1)[-1] == host


async def read_form(request: Request) -> FormData:
    """The request's form, refused past ``MAX_FORM_BYTES`` — counted as received, so a chunked
    body (no Content-Length) is limited too."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_FORM_BYTES:
        raise CsrfRejected("the form is too large")
    received, chunks = 0, []
    async for chunk in request.stream():
        received += len(chunk)
        if received > MAX_FORM_BYTES:
            raise CsrfRejected("the form is too large")
        chunks.append(chunk)
    request._body = b"".join(chunks)  # what request.form() then parses (Starlette reads a kept body)
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";")[0].strip().lower()
    if kind == URLENCODED:
        _refuse_unless_utf8(request._body)
    elif kind == MULTIPART:
        _refuse_text_parts_unless_utf8(content_type, request._body)
    form = await request.form()
    for name, value in form.multi_items():
        if not isinstance(value, str) and name not in FILE_FIELDS:
            raise ValidationFailed(f"{name[:40]!r} is a text field, not a file")
    return form


URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
FILE_FIELDS = frozenset({"log"})  # the form fields that take a file: the reconciliation's partner log


def _refuse_text_parts_unless_utf8(content_type: str, body: bytes) -> None:
    """A multipart form's text parts (not its files) as a browser sends them: UTF-8. Starlette reads a part
    that is not as Latin-1 (``Caf\\xe9`` as ``Café``), where nothing after can tell it was not typed so."""
    from email import message_from_bytes, policy

    message = message_from_bytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body,
                                 policy=policy.HTTP)
    for part in message.iter_parts() if message.is_multipart() else ():
        if part.get_filename() is None:
            try:
                (part.get_payload(decode=True) or b"").decode("utf-8")
            except UnicodeDecodeError:
                raise ValidationFailed("the form is not UTF-8 text") from None


def _refuse_unless_utf8(body: bytes) -> None:
    """A browser percent-encodes a form's text as UTF-8: a raw byte beyond ASCII, or an escape that is not
    UTF-8 (``%ff``), is no text anyone typed; Starlette would read it as another character (``ÿ``, U+FFFD)
    and a partner's name, a reference or a reason would be stored so."""
    try:
        parse_qsl(body.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise ValidationFailed("the form is not UTF-8 text") from None


def _same_token(sent: str, expected: str) -> bool:
    """In constant time, as bytes: compare_digest refuses str with characters beyond ASCII (a forged
    token such as "é" would be a TypeError, a 500, rather than a refusal)."""
    return hmac.compare_digest(sent.encode(), expected.encode())


def checked_form(*roles: str):
    """A dependency for every state-changing form: signed in, one of the roles (any if none
    given), same origin, and the session's CSRF token."""
    role_check = require(*roles) if roles else signed_in

    async def dependency(request: Request, session: Session = Depends(role_check)) -> tuple[Session, FormData]:
        form = await read_form(request)
        sent = str(form.get("csrf_token", ""))
        if not _same_origin(request) or not sent or not _same_token(sent, session.csrf_token):
            raise CsrfRejected("the form's CSRF token is missing or wrong")
        return session, form

    return dependency


def new_login_token() -> str:
    return secrets.token_urlsafe(32)


async def checked_login_form(request: Request) -> FormData:
    form = await read_form(request)
    sent = str(form.get("csrf_token", ""))
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not _same_origin(request) or not sent or not expected or not _same_token(sent, expected):
        raise CsrfRejected("the sign-in form's CSRF token is missing or wrong")
    return form
