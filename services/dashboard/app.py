"""The dashboard application: pages for operators, finance and partner viewers.

``pointsnet serve`` mounts it at /dashboard beside the partner API; ``pointsnet
serve-dashboard`` runs it alone. Its session cookie is scoped to its own path, and the partner
API never reads cookies, so neither accepts the other's credentials.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.dashboard import views
from services.dashboard.render import page
from shared.access.errors import NotSignedIn
from shared.errors import PointsnetError
from shared.network import Network

HEADERS = [
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                 b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]
STATIC = Path(__file__).parent / "static"


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


def create_dashboard(network: Network) -> FastAPI:
    app = FastAPI(title="Pointsnet dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.network = network
    for module in views.ROUTERS:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(DashboardHeaders)

    # The handlers render pages, which may read the session from the database: plain functions,
    # so Starlette runs them in a worker thread, never on the event loop.
    @app.exception_handler(NotSignedIn)
    def sign_in_first(request: Request, error: NotSignedIn):
        if request.method == "GET":
            return RedirectResponse((request.scope.get("root_path") or "") + "/login", status_code=303)
        return page(request, "error.html", status_code=401, code=error.code, detail=error.detail)

    @app.exception_handler(PointsnetError)
    def refused(request: Request, error: PointsnetError):
        return page(request, "error.html", status_code=error.status, code=error.code, detail=error.detail)

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, error: RequestValidationError):
        detail = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg', '')}"
                           for e in error.errors()[:5])
        return page(request, "error.html", status_code=422, code="validation_failed", detail=detail)

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, error: StarletteHTTPException):
        return page(request, "error.html", status_code=error.status_code, code="not_found"
                    if error.status_code == 404 else "http_error", detail=str(error.detail))

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
