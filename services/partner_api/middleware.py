"""The API's door, as ASGI middleware: body limit, signature check, rate limit, response signature.

Every response to a signed request — errors included — is signed by the network's
key with tag ``pointsnet-v1-response``, bound to the request's method, path, query
and signature, so it cannot be replayed for another request.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
from http_message_signatures.digests import ContentDigest
from limits import parse as parse_limit
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from services.partner_api import errors
from services.partner_api.auth import SignedRequest, authenticate, request_label
from services.partner_api.rate_window import LocalWindow
from shared.errors import PointsnetError, ValidationFailed
from shared.ledger import idempotency
from shared.ledger.idempotency import KEY_LENGTH
from shared.network import Network
from shared.log_redaction import log_failure
from shared.observability import route_label
from shared.signing import RESPONSE_TAG, network_key_id, response_components, signature_fields, signer

PROBLEM = "application/problem+json"
KEY_REFUSED = f"Idempotency-Key must be 1 to {KEY_LENGTH} visible ASCII characters (no spaces)"


def visible_key(key: str) -> bool:
    """1 to ``KEY_LENGTH`` visible ASCII characters, 0x21-0x7E: what the partner guide allows as an
    Idempotency-Key (``str.isprintable`` let a space through)."""
    return 0 < len(key) <= KEY_LENGTH and all("\x21" <= c <= "\x7e" for c in key)
log = logging.getLogger("pointsnet.api")
UNSIGNED_PATHS = {"/v1/network/keys", "/v1/checkpoints/latest"}  # public, self-authenticating
# A NUL character in a JSON string: the escape \u0000 after an even run of backslashes (\\u0000 is text).
NUL_IN_JSON = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


class Internal(PointsnetError):
    status, code, title = 500, "internal_error", "Internal error"


class _Response:
    def __init__(self, status_code: int, headers: httpx.Headers, request: SignedRequest):
        self.status_code = status_code
        self.headers = headers
        self.request = request


class PartnerGate:
    def __init__(self, app, network: Network):
        self.app = app
        self.network = network
        settings = network.settings
        self.max_body = settings.max_body_bytes
        self.authority = settings.public_authority
        self.rate = parse_limit(settings.rate_limit)
        self.limits = RateCounters(settings.redis_url)
        key = network.signing_key
        self.key_id = network_key_id(key)
        self.signer = signer(self.key_id, key)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        raw_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        headers = httpx.Headers(raw_headers)
        request = SignedRequest(scope["method"], self._url(scope, headers), headers, scope["path"])
        label = request_label(headers) if "signature" in headers else None
        try:
            body = await self._read_body(receive)
        except PointsnetError as error:
            await self._send_problem(send, error, request, label)
            return
        if scope["path"] in UNSIGNED_PATHS and "signature-input" not in headers:
            await self.app(scope, _replay(body), send)
            return
        try:
            if "signature-input" not in headers and "signature" not in headers:
                raise errors.SignatureMissing("sign the request (RFC 9421, profile pointsnet-v1)")
            auth = await self._authenticate(request, body)  # every 401 before a 400 of the Idempotency-Key
            await self._rate_limit(auth.partner_id)  # first: a refused Idempotency-Key counts too
            if scope["method"] == "POST":
                await self._require_idempotency_key(auth.partner_id, headers.get("idempotency-key"))
            refuse_nul(scope, body)
        except PointsnetError as error:
            await self._send_problem(send, error, request, label)
            return
        except Exception as exc:  # the database unreachable or its disk full at the door: a signed problem too
            log_failure(log, "unhandled error at the door of %s %s", scope["method"], route_label(scope), exc=exc)
            await self._send_problem(send, Internal("the network failed to answer; retry with the same "
                                                    "Idempotency-Key"), request, label)
            return
        scope.setdefault("state", {})
        scope["state"].update(partner_id=auth.partner_id, key_id=auth.key_id,
                              idempotency_key=headers.get("idempotency-key"))
        await self._signed(scope, _replay(body), send, request, auth.label)

    async def _authenticate(self, request: SignedRequest, body: bytes):
        """The signature, key, digest and nonce (``auth.authenticate``). A POST must sign its
        Idempotency-Key: one that carries none cannot have its signature verified (its base has no value
        for the header), so once every check that needs no such value has passed (the components
        covered, the times, the key known and active) it is refused for what is missing, 400
        ``idempotency_key_missing``; its nonce is not spent."""
        now = datetime.now(timezone.utc)  # signature freshness always uses the real time
        try:
            return await anyio.to_thread.run_sync(authenticate, self.network, request, body, now)
        except errors.SignatureInvalid as error:
            if request.method == "POST" and "idempotency-key" not in request.headers:
                raise errors.IdempotencyKeyMissing("every POST needs an Idempotency-Key header") from error
            raise

    async def _require_idempotency_key(self, partner_id: str, key: str | None) -> None:
        """1 to ``KEY_LENGTH`` visible ASCII characters. A key whose only characters out of bounds are
        spaces is let through while a record is kept under it (``_kept``)."""
        if not key:
            raise errors.IdempotencyKeyMissing("every POST needs an Idempotency-Key header")
        if visible_key(key):
            return
        if not visible_key(key.replace(" ", "!")) or not await anyio.to_thread.run_sync(self._kept, partner_id, key):
            raise errors.IdempotencyKeyInvalid(KEY_REFUSED)

    def _url(self, scope, headers: httpx.Headers) -> str:
        """The URL the signature is checked against. With POINTSNET_PUBLIC_AUTHORITY, the one partners
        sign: https on that authority (a default port is dropped from the setting when it is read, so
        ``@authority`` is the bare host a partner signing https://HOST/… covers, whatever scheme this
        process sees behind the proxy). Without it, the Host header and scheme the request came with."""
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        if self.authority:
            origin = f"https://{self.authority}"
        else:
            origin = f"{scope.get('scheme', 'http')}://{headers.get('host') or 'localhost'}"
        return origin + path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")

    async def _read_body(self, receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise errors.BodyTooLarge(f"the body exceeds {self.max_body} bytes")
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)

    def _kept(self, partner_id: str, key: str) -> bool:
        """Whether the partner has a record kept under ``key``: a key with a space, which the door let
        through before it checked for visible ASCII, still replays its stored answer while the record is
        kept (at least 7 days); a new request under such a key is refused."""
        return self.network.tx(lambda tx: tx.session.execute(
            idempotency.LOOKUP, {"partner_id": partner_id, "key": key}).first() is not None, readonly=True)

    async def _rate_limit(self, partner_id: str) -> None:
        reset = await self.limits.hit_async(self.rate, partner_id)
        if reset is not None:
            retry_after = max(1, math.ceil(reset - time.time()))
            raise errors.RateLimited(f"more than {self.rate} requests; retry in {retry_after} s",
                                     retry_after=retry_after)

    async def _send_problem(self, send, error: PointsnetError, request: SignedRequest, label: str | None) -> None:
        body = json.dumps(error.to_problem()).encode()
        headers = [("content-type", PROBLEM)]
        if isinstance(error, errors.RateLimited):
            headers.append(("retry-after", str(error.extra["retry_after"])))
        elif error.retry_after:  # request_in_progress
            headers.append(("retry-after", str(error.retry_after)))
        await self._finish(send, error.status, headers, body, request, label)

    async def _signed(self, scope, receive, send, request: SignedRequest, label: str) -> None:
        start: dict = {}
        chunks: list[bytes] = []
        finished = False

        async def capture(message):
            nonlocal finished
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
                    finished = True
                    await self._finish(send, start["status"], headers, b"".join(chunks), request, label)

        try:
            await self.app(scope, receive, capture)
        except Exception as exc:  # an answer to a signed request is a signed problem, even for our own failures
            # the route, not the path (a client's path may hold anything); a database error without its values
            log_failure(log, "unhandled error in %s %s", scope["method"], route_label(scope), exc=exc)
            if not finished:
                await self._send_problem(send, Internal("the network failed to answer; retry with the same "
                                                        "Idempotency-Key"), request, label)

    async def _finish(self, send, status: int, headers: list[tuple[str, str]], body: bytes,
                      request: SignedRequest, label: str | None) -> None:
        headers = [(k, v) for k, v in headers
                   if k.lower() not in ("content-length", "content-digest", "signature-input", "signature")]
        headers += [("content-length", str(len(body))), ("content-digest", ContentDigest.create(body))]
        if label is not None:
            message = _Response(status, httpx.Headers(headers), request)
            try:
                headers += signature_fields(self.signer, message, key_id=self.key_id, label="pointsnet",
                                            tag=RESPONSE_TAG, covered_component_ids=response_components(label),
                                            body=body, use_existing_digest=True)
            except Exception as exc:  # the request's own signature is unreadable: nothing to bind to
                log.info("response left unsigned: %s", exc)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]})
        await send({"type": "http.response.body", "body": body})


REDIS_TIMEOUT_SECONDS = 0.5  # the rate limit's Redis client: connect and read, unless the URL sets its own
REDIS_TIMEOUTS = ("socket_connect_timeout", "socket_timeout")


def redis_storage_options(url: str) -> dict:
    """The options limits' Redis storage of POINTSNET_REDIS_URL is made with: short connect and read
    timeouts, so that a Redis that is silent (black-holed: no answer, not even a refusal) fails open within
    a second instead of holding each request for the client's own timeout (redis-py 5: none at all).

    A timeout the URL's query sets is kept: redis-py reads those of a ``redis://``, ``rediss://`` or
    ``redis+unix://`` URL itself (and they override any option); limits reads no query of a
    ``redis+cluster://`` or ``redis+sentinel://`` one, so those are passed on from here. A sentinel's own
    connections (finding the master) get the same timeouts."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    own = parts.scheme in ("redis+cluster", "redis+sentinel")  # limits leaves their query unread
    options: dict = {}
    for name in REDIS_TIMEOUTS:
        if name not in query:
            options[name] = REDIS_TIMEOUT_SECONDS
        elif own:
            options[name] = float(query[name][-1])
    if parts.scheme == "redis+sentinel":
        options["sentinel_kwargs"] = {name: options[name] for name in REDIS_TIMEOUTS}
    return options


class RateCounters:
    """Where the rate limit counts: in Redis when POINTSNET_REDIS_URL is set (one count for all API
    processes), else in this process.

    A Redis that cannot be reached or fails fails open to this process's own counters, never to an
    error answer (docs/operations.md): one warning when an outage starts and one when Redis answers
    again, Redis asked again every REDIS_RETRY_SECONDS meanwhile; its client gives up after
    REDIS_TIMEOUT_SECONDS (``redis_storage_options``), so a silent Redis delays a request by about that
    once per outage and retry, not the OS's connect timeout. Its client is made on the first
    request, not with the gate: a cluster client connects as it is made, and the gate itself is built
    by the first request of all (a failure there answered every request, the health probe too, 500).

    The gate counts through ``hit_async``: a request that asks Redis does so in a worker thread, never on
    the event loop, so a slow or silent Redis never stalls the loop (the health probe still answers).
    Those threads are anyio's default pool, shared with the requests' database work. So while Redis is
    in doubt — its client not made yet, or an outage's retry due — one request at a time asks it (the
    probe, ``probing``); every other request meanwhile counts on this process's own counters at once,
    on the loop, as during the outage, and never waits for the probe or holds a thread for it. The
    probe's answer decides for the requests after it: Redis again, or this process's counters until the
    next retry. (A Redis that falls silent while in use still holds each request already asking it for
    up to the client's timeouts, until the first timeout marks the outage.) This process's own counters
    (memory, no I/O: ``rate_window.LocalWindow``) are counted on the loop. The sync client's connection
    pool, those counters and this object's state (under ``self.lock``) are safe to share between
    those threads."""

    REDIS_RETRY_SECONDS = 10.0

    def __init__(self, redis_url: str | None):
        self.redis_url = redis_url
        self.local = LocalWindow()
        self.shared: MovingWindowRateLimiter | None = None
        self.down_until: float | None = None  # during an outage: time.monotonic() when Redis is asked again
        self.probing = False  # one request is asking a Redis in doubt (client to make, or retry due)
        self.lock = threading.Lock()  # the probe's turn and the outage's start and end, across threads

    def _route(self) -> str:
        """How this request counts: "redis" (Redis in use), "probe" (this request asks a Redis in doubt,
        the only one doing so) or "local" (an outage, or another request's probe under way). Never
        waits: the lock only guards a few fields."""
        if not self.redis_url:
            return "local"
        if self.down_until is None and self.shared is not None:
            return "redis"
        with self.lock:
            if self.down_until is None and self.shared is not None:
                return "redis"
            if self.probing or (self.down_until is not None and time.monotonic() < self.down_until):
                return "local"
            self.probing = True
            return "probe"

    async def hit_async(self, rate, key: str) -> float | None:
        """``hit`` for the event loop: Redis is asked (and its client made) in a worker thread."""
        route = self._route()
        if route == "local":
            return self._hit_local(rate, key)  # this process's counters: memory only, nothing to wait for
        try:
            return await anyio.to_thread.run_sync(self._hit_shared, rate, key, route)
        finally:  # also when the request is cancelled before a thread took the call (waiting for one)
            self._probed(route)

    def hit(self, rate, key: str) -> float | None:
        """Count one request: None if it is let in, else when its window resets (epoch seconds)."""
        route = self._route()
        if route == "local":
            return self._hit_local(rate, key)
        try:
            return self._hit_shared(rate, key, route)
        finally:
            self._probed(route)

    def _probed(self, route: str) -> None:
        """The probe is over, however it ended: the next request in doubt may ask Redis (left set, the
        process would count alone for good, never asking Redis again)."""
        if route == "probe":
            with self.lock:
                self.probing = False

    def _hit_local(self, rate, key: str) -> float | None:
        return self.local.hit(rate, key)

    def _hit_shared(self, rate, key: str, route: str = "redis") -> float | None:
        """Count in Redis; on any failure of Redis (refused, timed out, cluster down, READONLY...) the
        outage starts (or goes on) and this request counts on this process's counters. Only the probe's
        answer ends an outage (``route``)."""
        if self.shared is None:  # only a probe makes the client: a cluster's connects as it is made
            try:
                self.shared = MovingWindowRateLimiter(storage_from_string(
                    self.redis_url, **redis_storage_options(self.redis_url)))
            except Exception as exc:
                self._failed(exc)
                return self._hit_local(rate, key)
        limiter = self.shared
        try:
            allowed = limiter.hit(rate, key)
            reset = None if allowed else limiter.get_window_stats(rate, key).reset_time
        except Exception as exc:
            self._failed(exc)
            return self._hit_local(rate, key)
        if route == "probe" and self.down_until is not None:
            with self.lock:
                # only the probe, asked once the retry fell due, ends the outage: a request routed to Redis
                # before the outage began (already waiting on a slow Redis, or for a thread to ask it in)
                # says nothing of Redis now (until 2026-12-07 such late answers ended each outage at once,
                # and the outage flapped)
                if self.down_until is not None:
                    self.down_until = None
                    log.warning("POINTSNET_REDIS_URL: the rate limit's Redis answers again; rate limits "
                                "count for all API processes")
        return reset

    def _failed(self, exc: Exception, locked: bool = False) -> None:
        if not locked:
            with self.lock:
                return self._failed(exc, locked=True)
        if self.down_until is None:  # the URL is not named: it may hold a password
            log.warning("POINTSNET_REDIS_URL: the rate limit's Redis failed (%s); each API process counts "
                        "its rate limits alone until it answers again (asked every %g s)",
                        type(exc).__name__, self.REDIS_RETRY_SECONDS)
        self.down_until = time.monotonic() + self.REDIS_RETRY_SECONDS


def refuse_nul(scope, body: bytes) -> None:
    """No NUL character (U+0000) anywhere a partner sends text: PostgreSQL cannot store one in text, and
    psycopg refuses it (a 500 on any route that looks an id or a reference up). Refused here, once for
    every route, as a schema refusal: 422 validation_failed, nothing stored or posted."""
    found = [where for where, present in (
        ("path", "\x00" in scope["path"]),  # uvicorn decodes %00 in the path
        ("query", b"%00" in scope.get("query_string", b"")),
        ("body", b"\\u0000" in body and NUL_IN_JSON.search(body) is not None),
    ) if present]
    if found:
        raise ValidationFailed(f"a NUL character (U+0000) is not accepted in the request's {' or '.join(found)}",
                               errors=[{"field": where, "message": "contains a NUL character (U+0000)"}
                                       for where in found])


def _replay(body: bytes):
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await anyio.sleep_forever()

    return receive
