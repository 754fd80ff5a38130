"""The dashboard application: pages for operators, finance and partner viewers.

``pointsnet serve`` mounts it at /dashboard beside the partner API; ``pointsnet
serve-dashboard`` runs it alone. Its session cookie is scoped to its own path, and the partner
API never reads cookies, so neither accepts the other's credentials.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.dashboard import views
from services.dashboard.render import page
from services.dashboard.security import MAX_FORM_BYTES
from shared.access.errors import NotSignedIn
from shared.errors import PointsnetError
from shared.network import Network
from shared.observability import route_label

HEADERS = [
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                 b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]
STATIC = Path(__file__).parent / "static"
log = logging.getLogger("pointsnet.dashboard")


class DashboardHeaders:
    """A strict content security policy (scripts and styles from our own static files only)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                static = scope["path"].startswith((scope.get("root_path") or "") + "/static/")
                extra = [h for h in HEADERS if not (static and h[0] == b"cache-control")]
                message["headers"] = [(n, v) for n, v in message.get("headers", []) if n.lower() not in
                                      {h[0] for h in extra}] + extra
            await send(message)

        await self.app(scope, receive, with_headers)


class RefuseNul:
    """No NUL character (U+0000) in a page's address, its query or a form: PostgreSQL cannot store or
    compare one in text, so any field a page looks up would be a 500. Refused here, once for every
    page and before any of them runs (signed in or not), with the page any invalid input gets: 422
    validation_failed. A form is read here up to MAX_FORM_BYTES; a larger one reaches read_form, which
    refuses it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        messages, body, more = [], b"", True
        while more and len(body) <= MAX_FORM_BYTES:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
        replay = _replay(messages, receive)
        found = [where for where, present in (
            ("address", "\x00" in scope["path"]),  # uvicorn decodes %00 in the path
            ("query", any(nul in scope.get("query_string", b"") for nul in (b"%00", b"\x00"))),
            # a form is URL-encoded (%00) or multipart, whose parts (an uploaded log) are raw text
            ("form", any(nul in body for nul in ((b"%00", b"\x00") if _url_encoded(scope) else (b"\x00",)))),
        ) if present]
        if not found:
            return await self.app(scope, replay, send)
        # the page may read the session from the database: in a worker thread, never on the event loop
        response = await run_in_threadpool(
            page, Request(scope, replay), "error.html", status_code=422, code="validation_failed",
            detail=f"a NUL character (U+0000) is not accepted in the page's {' or '.join(found)}")
        await response(scope, replay, send)


def _url_encoded(scope) -> bool:
    kind = dict(scope.get("headers") or ()).get(b"content-type", b"")
    return kind.split(b";", 1)[0].strip().lower() == b"application/x-www-form-urlencoded"


def _replay(messages: list[dict], receive):
    """``receive`` that gives back the messages already read, then reads on."""
    pending = list(messages)

    async def replayed():
        return pending.pop(0) if pending else await receive()

    return replayed


def create_dashboard(network: Network) -> FastAPI:
    app = FastAPI(title="Pointsnet dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.network = network
    for module in views.ROUTERS:  # the routes as they are (see services/partner_api/app.py)
        app.router.routes.extend(module.router.routes)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(RefuseNul)
    app.add_middleware(DashboardHeaders)  # outside RefuseNul: its refusals carry the headers too

    # The handlers render pages, which may read the session from the database: plain functions,
    # so Starlette runs them in a worker thread, never on the event loop.
    @app.exception_handler(NotSignedIn)
    def sign_in_first(request: Request, error: NotSignedIn):
        if request.method == "GET":
            return RedirectResponse((request.scope.get("root_path") or "") + "/login", status_code=303)
        return page(request, "error.html", status_code=401, code=error.code, detail=error.detail, extra=error.extra)

    @app.exception_handler(PointsnetError)
    def refused(request: Request, error: PointsnetError):
        return page(request, "error.html", status_code=error.status, code=error.code, detail=error.detail,
                    extra=error.extra)

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, error: RequestValidationError):
        detail = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg', '')}"
                           for e in error.errors()[:5])
        fields = [{"loc": e.get("loc", ()), "type": e.get("type", ""), "ctx": e.get("ctx") or {}}
                  for e in error.errors()[:5]]  # the page's language says each field's problem
        return page(request, "error.html", status_code=422, code="validation_failed", detail=detail,
                    extra={"errors": fields})

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, error: StarletteHTTPException):
        return page(request, "error.html", status_code=error.status_code, code="not_found"
                    if error.status_code == 404 else "http_error", detail=str(error.detail))

    # A failure no handler above answers leaves through Starlette's outermost middleware, outside
    # DashboardHeaders: its page carries the same headers itself, and never the error's internals.
    @app.exception_handler(Exception)
    def failed(request: Request, error: Exception):
        headers = {name.decode(): value.decode() for name, value in HEADERS}
        try:
            response = page(request, "error.html", status_code=500, code="internal_error",
                            detail="the dashboard failed to answer; try again, or tell the network's operators")
        except Exception:  # the page itself cannot be made (say, the database is gone): plain text
            # the route's label, as the request log names it: the path holds whatever a visitor typed
            log.exception("the error page for %s %s failed", request.method, route_label(request.scope))
            return PlainTextResponse("Internal Server Error", status_code=500, headers=headers)
        response.headers.update(headers)
        return response

    @app.get("/health/ready", include_in_schema=False)
    def ready():
        try:
            network.db.ping()
        except Exception:
            from fastapi.responses import JSONResponse

            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return {"status": "ok", "database": network.db.dialect}

    @app.get("/health/live", include_in_schema=False)
    def live():
        return {"status": "ok"}

    return app
