"""Structured logs and Prometheus metrics.

Logs: with ``POINTSNET_LOG_FORMAT=json`` every record is one JSON object (python-json-logger);
one ``request`` event per HTTP request and one ``job`` event per job run, carrying partner id,
request id and ledger transaction id where there is one — never personal data (member ids only).
A request is named by its route's template, a path no route names by a fixed label (``route_label``);
a database error is logged without the values it carries (shared/log_redaction.py: ``log_failure``,
and the handler's filter).

Metrics: prometheus_client's registry of this process, served at ``/metrics``. Each API
process and each worker exposes its own; Prometheus scrapes them all and sums.
"""

from __future__ import annotations

import collections
import logging
import re
import time
import uuid

from prometheus_client import Counter, Gauge, Histogram
from starlette.routing import Mount

from shared.log_redaction import WithoutDatabaseValues

REQUESTS = Counter("pointsnet_http_requests_total", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram("pointsnet_http_request_duration_seconds", "Time to answer an HTTP request", ["route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
SIGNATURE_FAILURES = Counter("pointsnet_signature_failures_total", "Requests refused at the door (401)", ["code"])
REPLAYS = Counter("pointsnet_idempotent_replays_total", "Stored answers replayed for a repeated Idempotency-Key")
ENTRIES = Counter("pointsnet_ledger_entries_total", "Ledger entries committed by this process", ["kind"])
JOB_RUNS = Counter("pointsnet_job_runs_total", "Scheduled job runs", ["job", "outcome"])
JOB_DURATION = Histogram("pointsnet_job_duration_seconds", "Time a scheduled job run took", ["job"],
                         buckets=(0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 1800))
SETTLEMENT_DURATION = Histogram("pointsnet_settlement_run_seconds", "Time to settle one cycle",
                                buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 1800))
LIABILITY_MEASURED = Gauge("pointsnet_outstanding_points_measured_timestamp_seconds",
                           "When the worker last measured pointsnet_outstanding_points (Unix time; 0: never)")
LIABILITY = Gauge("pointsnet_outstanding_points", "Points open in unexpired lots, by who funds them",
                  ["billing"])

WEBHOOK_BACKLOG = Gauge("pointsnet_webhook_backlog", "Webhook deliveries not delivered yet, by status", ["status"])
METRICS_READ_FAILURES = Counter("pointsnet_metrics_database_read_failures_total",
                                "Scrapes whose gauges read from the database kept their last values (database unreachable)")

request_log = logging.getLogger("pointsnet.request")
job_log = logging.getLogger("pointsnet.job")

_ENTRY_ID = re.compile(rb'"(?:transaction_id|entry_id)":\s*"([A-Za-z0-9_]+)"')
_CODE = re.compile(rb'"code":\s*"([a-z0-9_]+)"')


def configure_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"asctime": "time", "levelname": "level",
                                                          "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(WithoutDatabaseValues())  # any logger's: uvicorn's "Exception in ASGI application" too
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("apscheduler", "alembic", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# -- what a request is named by -----------------------------------------------------------------

def route_label(scope) -> str:
    """The ``route`` a request is logged and counted under: its route's template, behind the path its
    app is mounted at (``/v1/members/{member_id}``, ``/dashboard/members``); a path that no route names
    gets a fixed label by prefix: ``/v1/*``, ``<mount>/*`` (``/dashboard/*``, ``/dashboard/static/*``:
    the dashboard's static files too) and ``/*`` for any other. Never the path itself: it holds
    whatever a client typed (a phone number, an e-mail address), and each label is a time series
    kept for the life of the process."""
    root_path = scope.get("root_path") or ""
    app_root = scope.get("app_root_path")  # set by a Mount that matched: root_path then ends in its path
    mounted = root_path[len(app_root):] if app_root is not None and root_path.startswith(app_root) else ""
    route = scope.get("route")
    template = None if isinstance(route, Mount) else getattr(route, "path", None)
    if template:
        return mounted + template
    if mounted:
        return mounted + "/*"
    path = scope.get("path") or ""
    path = path[len(root_path):] if root_path and path.startswith(root_path) else path
    if path in FRAMEWORK_ROUTES:  # FastAPI's own pages: Starlette routes, which name no route in the scope
        return path
    return "/v1/*" if path.startswith("/v1/") else "/*"


# the API's documentation, served by FastAPI itself: a fixed set, each its own label
FRAMEWORK_ROUTES = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})


def count_entries(kinds: list[str]) -> None:
    """Count a unit's committed entries: one increment per kind (a labelled child's lookup and its
    lock per entry were a twentieth of a batch's time)."""
    for kind, count in collections.Counter(kinds).items():
        ENTRIES.labels(kind).inc(count)


class RequestObserver:
    """Outermost ASGI middleware: request id, one log event and the metrics of every request."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        seen = {"status": 500, "entry_id": None, "code": None, "replayed": False}
        scope.setdefault("state", {})["request_id"] = request_id

        async def observe(message):
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                response_headers = list(message.get("headers", []))
                seen["replayed"] = (b"idempotent-replayed", b"true") in response_headers
                message = {**message, "headers": response_headers + [(b"x-request-id", request_id.encode())]}
            elif message["type"] == "http.response.body" and seen["entry_id"] is None:
                body = message.get("body", b"")[:65536]
                if (found := _ENTRY_ID.search(body)) is not None:
                    seen["entry_id"] = found.group(1).decode()
                if seen["status"] >= 400 and (code := _CODE.search(body)) is not None:
                    seen["code"] = code.group(1).decode()
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            elapsed = time.perf_counter() - started
            route = route_label(scope)
            REQUESTS.labels(route, scope["method"], str(seen["status"])).inc()
            LATENCY.labels(route).observe(elapsed)
            if seen["status"] == 401 and seen["code"]:
                SIGNATURE_FAILURES.labels(seen["code"]).inc()
            if seen["replayed"]:
                REPLAYS.inc()
            state = scope.get("state", {})
            request_log.info("%s %s %s %.1f ms", scope["method"], route, seen["status"], elapsed * 1000, extra={
                "event": "request", "request_id": request_id, "method": scope["method"], "route": route,
                "status": seen["status"], "duration_ms": round(elapsed * 1000, 2),
                "partner_id": state.get("partner_id"), "transaction_id": seen["entry_id"],
                "problem_code": seen["code"], "idempotent_replay": seen["replayed"]})


def observe_job(name: str, elapsed: float, outcome: str, detail: str | None = None) -> None:
    JOB_RUNS.labels(name, outcome).inc()
    JOB_DURATION.labels(name).observe(elapsed)
    job_log.info("job %s %s in %.1f ms", name, outcome, elapsed * 1000, extra={"event": "job", "job": name, "outcome": outcome,
                               "duration_ms": round(elapsed * 1000, 2), "detail": detail})


def set_liability(outstanding: dict[str, int], measured_at=None) -> None:
    """This process's liability gauges: the figures, and when the worker measured them (if it did)."""
    for billing, points in outstanding.items():
        LIABILITY.labels(billing).set(points)
    if measured_at is not None:
        LIABILITY_MEASURED.set(measured_at.timestamp())


def refresh_liability(tx) -> None:
    """Set the gauges read from the database at each scrape: outstanding points as the worker last
    measured them (summed here only until it first has: shared/ledger/outstanding.py), the webhook
    backlog."""
    from sqlalchemy import func, select

    from shared.ledger.outstanding import last_measured, outstanding_now

    kept = last_measured(tx)
    if kept is None:  # no worker has measured yet: the figures now, and the timestamp stays 0
        set_liability(outstanding_now(tx))
    else:
        set_liability(*kept)
    from shared.models import WebhookDelivery

    backlog = dict(tx.session.execute(select(WebhookDelivery.status, func.count()).where(
        WebhookDelivery.status != "delivered").group_by(WebhookDelivery.status)).all())
    for status in ("pending", "dead"):
        WEBHOOK_BACKLOG.labels(status).set(int(backlog.get(status) or 0))
