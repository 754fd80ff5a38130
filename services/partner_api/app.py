"""The FastAPI application partners talk to: the signed v1 API, plus health and readiness."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Callable

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.partner_api.errors import MalformedRequest
from services.partner_api.links import add_links
from services.partner_api.middleware import PartnerGate
from services.partner_api.reports import router as reports_router
from services.partner_api.routes import router
from shared.errors import BatchTooLarge, PointsnetError, ValidationFailed
from shared.ledger.idempotency import KEY_LENGTH
from shared.network import Network
from shared.log_redaction import log_failure
from shared.observability import METRICS_READ_FAILURES, RequestObserver, refresh_liability

PROBLEM = "application/problem+json"
log = logging.getLogger("pointsnet.api")
DESCRIPTION = """
The Pointsnet partner API (v1). Every request is signed with RFC 9421 HTTP Message
Signatures, profile `pointsnet-v1` (Ed25519; components `@method @authority @path
@query`, plus `content-digest` and `idempotency-key` on every POST; parameters
`created`, `nonce`, `keyid`, `alg="ed25519"`, `tag="pointsnet-v1"`). Every response
to a signed request is signed by the network (tag `pointsnet-v1-response`).
Errors are RFC 9457 problem details with a stable `code`. See docs/partner-integration.md.
"""


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"cache-control", b"no-store"),
]
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
DOC_PATHS = ("/docs", "/redoc")  # the interactive documentation loads its scripts; everything else is data


class SecurityHeaders:
    """Headers that keep a browser from sniffing, framing or caching an answer (OWASP API8)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        extra = SECURITY_HEADERS + ([] if scope["path"].startswith(DOC_PATHS) else [API_CSP])

        async def with_headers(message):
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in extra if name not in present]
            await send(message)

        await self.app(scope, receive, with_headers)


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": True,
    "description": f"One per operation, reused on every retry of it (a UUID is ideal): 1 to {KEY_LENGTH} visible "
                   "ASCII characters (`!` to `~`, no spaces), else 400 `idempotency_key_missing` or "
                   "`idempotency_key_invalid`. Covered by the request signature.",
    "schema": {"type": "string", "minLength": 1, "maxLength": KEY_LENGTH, "pattern": "^[!-~]+$"},  # as PartnerGate
}


def declare_idempotency_key(document: dict) -> dict:
    """Every POST of the partner API needs an Idempotency-Key (the door, PartnerGate, refuses one without
    it): declared on each, so that a generated client or Swagger UI sends one."""
    for path, operations in document.get("paths", {}).items():
        post = operations.get("post")
        if path.startswith("/v1/") and post is not None:
            parameters = post.setdefault("parameters", [])
            if not any(p.get("in") == "header" and p.get("name", "").lower() == "idempotency-key" for p in parameters):
                parameters.append(dict(IDEMPOTENCY_KEY))
    return document


def create_app(network: Network, *, on_start: Callable[[], None] | None = None,
               on_stop: Callable[[], None] | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # Sync endpoints (and the door's checks) run in anyio's worker threads, 40 by default. More of
        # them at once than the pool holds made the pool open and close an overflow connection for
        # about every other request under load (934 new connections in 2,064 single earns).
        to_thread.current_default_thread_limiter().total_tokens = network.db.pool_size
        if on_start:
            on_start()
        try:
            yield
        finally:
            if on_stop:
                on_stop()

    # redirect_slashes off: /v1/transactions/ is an unknown path (404 not_found), never a signed 307 to
    # the address this process sees (the internal host, in plain http, behind the proxy)
    app = FastAPI(title="Pointsnet partner API", version="1", description=DESCRIPTION, lifespan=lifespan,
                  redirect_slashes=False)
    app.state.network = network
    # the routers' routes as they are: include_router would build every route's state again for each
    # app, at its first request (about 50 ms an app; the tests make one per network)
    app.router.routes.extend([*router.routes, *reports_router.routes])
    generated = app.openapi

    def openapi() -> dict:  # the generated document, with the links between operations
        if app.openapi_schema is None:
            add_links(declare_idempotency_key(generated()))
        return app.openapi_schema

    app.openapi = openapi
    app.add_middleware(PartnerGate, network=network)
    app.add_middleware(RequestObserver)  # sees every answer, the door's refusals included
    app.add_middleware(SecurityHeaders)  # outermost: on every answer (outside the signature, which they don't touch)

    @app.exception_handler(PointsnetError)
    async def problem(_request: Request, error: PointsnetError) -> JSONResponse:
        headers = {"retry-after": str(error.retry_after)} if error.retry_after else None  # request_in_progress
        return JSONResponse(error.to_problem(), status_code=error.status, media_type=PROBLEM, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_problem(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400:  # FastAPI's "There was an error parsing the body" (not UTF-8, ...)
            refusal = MalformedRequest("the request body cannot be read: it must be JSON in UTF-8")
            return JSONResponse(refusal.to_problem(), status_code=400, media_type=PROBLEM)
        codes = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
        body = {"type": "about:blank", "title": str(error.detail), "status": error.status_code,
                "code": codes.get(error.status_code, "http_error"), "detail": str(error.detail)}
        return JSONResponse(body, status_code=error.status_code, media_type=PROBLEM,
                            headers=getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        unreadable = [item for item in error.errors() if item.get("type") == "json_invalid"]
        if unreadable:  # the body is not JSON at all (truncated, a stray comma): nothing to validate
            where = unreadable[0].get("loc", ())[1:]
            reason = (unreadable[0].get("ctx") or {}).get("error") or unreadable[0].get("msg", "")
            refusal = MalformedRequest("the request body is not valid JSON: " + reason
                                       + (f" (at character {where[0]})" if where else ""))
            return JSONResponse(refusal.to_problem(), status_code=400, media_type=PROBLEM)
        too_many = [item for item in error.errors() if item.get("type") == "batch_too_large"]
        if too_many:  # schemas.BatchRequest: the ledger's own refusal of too large a batch, as documented
            refusal = BatchTooLarge(too_many[0].get("msg", ""))
            return JSONResponse(refusal.to_problem(), status_code=refusal.status, media_type=PROBLEM)
        details = [{"field": ".".join(str(part) for part in item.get("loc", ())[1:]) or "body",
                    "message": item.get("msg", "")} for item in error.errors()]
        body_refused = any(tuple(item.get("loc", ()))[:1] == ("body",) for item in error.errors())
        sent_a_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
        if body_refused and sent_a_body and not _declares_json(request.headers.get("content-type")):
            # FastAPI reads a body as JSON only under a JSON media type: the body arrived as bytes, and
            # "Input should be a valid dictionary" would not tell a POS (curl -d sends form data) why
            sent = request.headers.get("content-type")
            details = [{"field": "body", "message": "a request body is read as JSON only when sent with "
                        "Content-Type: application/json (this request's is "
                        + (f"{sent[:100]!r})" if sent else "missing)")}] + [
                detail for detail, item in zip(details, error.errors())
                if tuple(item.get("loc", ()))[:1] != ("body",)]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
        refusal = ValidationFailed(f"the request does not match the API: {summary}", errors=details)
        return JSONResponse(refusal.to_problem(), status_code=422, media_type=PROBLEM)

    @app.get("/health/live", tags=["health"])
    async def live() -> dict:  # on the event loop: answers even while every worker thread is busy
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/health", tags=["health"])
    @app.get("/health/ready", tags=["health"])
    def ready() -> JSONResponse:
        """Readiness: the database answers."""
        try:
            network.db.ping()
        except Exception:
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": network.db.dialect})

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    def metrics() -> Response:
        """Prometheus metrics of this process (scrape every API process and worker). With the database
        unreachable the gauges read from it keep their last values, and every other series is still served
        (a 500 would lose the request and error counts on-call needs most then)."""
        try:
            network.tx(refresh_liability, readonly=True)
        except Exception as exc:
            METRICS_READ_FAILURES.inc()
            log_failure(log, "metrics: the gauges read from the database kept their last values", exc=exc)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def _declares_json(content_type: str | None) -> bool:
    """Whether a Content-Type is one FastAPI reads a body as JSON under: application/json or application/*+json."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def warn_without_public_authority(settings) -> None:
    """One warning when an API process starts serving without POINTSNET_PUBLIC_AUTHORITY: each request's
    ``@authority`` is then checked against the Host header it brings, so a request signed for another
    host (another network, a staging one) is accepted here if it is replayed with that Host. Fine on
    one machine (the demo); production sets it (docs/operations.md)."""
    if not settings.public_authority:
        log.warning("POINTSNET_PUBLIC_AUTHORITY is not set: request signatures are checked against the Host "
                    "header each request brings, so a request signed for another host (another network's) "
                    "is accepted if replayed here with that Host; set it to the host[:port] partners sign")


def from_environment() -> FastAPI:
    """The API of one ``pointsnet serve-api`` process (with ``--workers N``, uvicorn calls this factory
    in each worker): settings, logging and keys from the environment."""
    from shared.config import get_settings
    from shared.observability import configure_logging
    from shared.runtime import tune_for_throughput

    settings = get_settings()
    configure_logging(settings.log_format)
    network = Network(settings)
    network.check_keys()  # fail at start, not on the first request
    network.pin_cycle_settings()
    # warned as the process starts serving: a refusal before that (keys, the port) stays one line
    application = create_app(network, on_start=lambda: warn_without_public_authority(settings))
    tune_for_throughput()
    return application
