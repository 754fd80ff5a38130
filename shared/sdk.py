"""PointsnetClient: the Python partner SDK.

It signs every request (RFC 9421, profile ``pointsnet-v1``) with the partner's
Ed25519 key, makes an Idempotency-Key per operation and reuses it on every retry,
retries only what is safe to retry, and verifies the network's response signature.

    client = PointsnetClient("https://points.example.com", key_id, private_key)
    client.earn(member_id, reference="order-1001", amount=12800)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
import weakref
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterator

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import HTTPMessageVerifier, MappingKeyResolver, algorithms

from shared.sdk_sending import GaveUp, Senders
from shared.signing import (
    FRESHNESS_S, POST_COMPONENTS, REQUEST_COMPONENTS, REQUEST_TAG, RESPONSE_TAG, RETIRED_KEY_ROLLOUT,
    public_key_from_jwk, response_components, signer,
)

from shared.tls import tls_context
from shared.transparency import merkle
from shared.transparency.note import ParsedCheckpoint, open_note
from shared.transparency.note import key_hash as note_key_hash

LABEL = "sig1"
RETRY_STATUSES = {429, 502, 503, 504}
GATEWAY_STATUSES = {502, 503, 504}
# A proxy's own unsigned 413 (nginx's client_max_body_size, deploy/nginx: 9m): answered as the network's
# body_too_large, nothing in it trusted, never retried
TOO_LARGE = 413
MAX_BODY_BYTES = 8 * 1024 * 1024  # the network's default body limit (POINTSNET_MAX_BODY_BYTES): batch() refuses more
# After a request whose answer was lost (a timeout, a dropped connection, a proxy's 502/503/504), 409
# request_in_progress is the first request still running: it is retried (no sooner than its Retry-After),
# beyond the retries, for at least this long (or the client's timeout, if longer) before it is raised.
IN_PROGRESS_WAIT_S = 60.0
# a transport error after which the request may have reached the network (not a refused connection)
ANSWER_LOST = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


MAX_RETRY_AFTER_S = 300.0  # a Retry-After longer than this is answered with the error, not slept on
KEY_REFETCH_INTERVAL_S = 60.0  # an answer signed by an unknown key fetches the network's keys at most this often
# The network's keys a client fetched are held at most this long (or what the keys endpoint's Cache-Control
# max-age says, within KEYS_MAX_AGE_BOUNDS_S); the next call or check after that fetches them again, so a
# long-lived client learns that a key it holds was retired since.
KEYS_MAX_AGE_S = 300.0
KEYS_MAX_AGE_BOUNDS_S = (KEY_REFETCH_INTERVAL_S, 3600.0)
# While such a refresh fails, the keys held go on being used for at most this long after they were fetched:
# a key retired just after that fetch is still within its rollout allowance until then (an hour to spare for
# the network's own caching of its keys and the clocks' allowance). Later, keys that cannot be fetched again
# fail the call, before its request is sent, as they fail a new client's first call.
KEYS_STALE_LIMIT_S = (RETIRED_KEY_ROLLOUT - timedelta(hours=1)).total_seconds()

log = logging.getLogger("pointsnet.sdk")


class PointsnetAPIError(Exception):
    """A problem+json answer from the network, with its stable ``code``."""

    def __init__(self, status: int, problem: dict):
        super().__init__(f"{status} {problem.get('code')}: {problem.get('detail')}")
        self.status = status
        self.problem = problem
        self.code = problem.get("code")


class ProofError(Exception):
    """A checkpoint, inclusion proof or consistency proof from the network did not verify."""


class ResponseSignatureError(Exception):
    """The network's answer did not carry a valid signature bound to our request."""


class StatementDigestError(ProofError):
    """A statement file whose SHA-256 is not the ``statement_sha256`` its statement lists."""


class BodyTooLargeError(ValueError):
    """A request body over the network's limit, refused before it is sent (nothing was sent)."""


def _instant(text: str) -> datetime:
    """An RFC 3339 time as the network writes it (``2026-11-20T02:00:00Z``); one without a zone is UTC."""
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _cycle(cycle: date | str) -> str:
    return cycle.isoformat() if isinstance(cycle, date) else cycle


def _problem(response: httpx.Response) -> dict:
    """The problem details of an error answer to an unsigned request (a proxy's 502/503/504 page: none)."""
    if response.status_code in GATEWAY_STATUSES or "problem+json" not in response.headers.get("content-type", ""):
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _max_age(headers: httpx.Headers) -> float:
    """How long the network's keys just fetched are held: their answer's Cache-Control max-age, within
    KEYS_MAX_AGE_BOUNDS_S (never refetched on every call, never held for hours); KEYS_MAX_AGE_S without one."""
    for directive in headers.get("cache-control", "").split(","):
        name, _, value = directive.strip().partition("=")
        value = value.strip().strip('"')
        if name.strip().lower() == "max-age" and value.isascii() and value.isdigit():
            low, high = KEYS_MAX_AGE_BOUNDS_S
            return min(max(float(value), low), high)
    return KEYS_MAX_AGE_S


def _host_and_port(scheme: str, authority: str) -> tuple[str, int | None]:
    """The host and port of ``authority`` (``host[:port]``, an IPv6 host in brackets) under ``scheme``, set
    apart, as httpx takes an IPv6 literal only so; a scheme's default port is None (dropped, as RFC 9421
    derives ``@authority``). An authority that is not host[:port] is a ValueError."""
    parsed = httpx.URL(f"{scheme}://{authority}")
    if not parsed.host or parsed.userinfo or parsed.raw_path not in (b"", b"/") or parsed.query:
        raise ValueError(f"authority {authority!r} is not host[:port]")
    return parsed.host, parsed.port


@dataclass
class _View:
    method: str
    url: str
    headers: httpx.Headers


@dataclass
class _ResponseView:
    status_code: int
    headers: httpx.Headers
    request: _View


class _Resolver(MappingKeyResolver):
    """The network's keys; remembers a key id asked for that is not among them."""

    def __init__(self, keys: dict[str, Ed25519PublicKey]):
        super().__init__(public_keys=keys, private_keys={})
        self.unknown: str | None = None

    def resolve_public_key(self, key_id: str):
        key = super().resolve_public_key(key_id)
        if key is None:
            self.unknown = key_id
        return key


@dataclass
class Answer:
    status: int
    body: Any
    replayed: bool
    headers: httpx.Headers
    content: bytes = b""  # the body as received (a CSV or HTML answer's ``body`` is its decoded text)
    gateway: bool = False  # a proxy's own unsigned 502/503/504: the request may have reached the network


def _close_unread(response: httpx.Response) -> None:
    """An answer whose headers came after its attempt's deadline: closed, its connection released."""
    response.close()


class PointsnetClient:
    def __init__(self, base_url: str, key_id: str, private_key: Ed25519PrivateKey, *, authority: str | None = None,
                 network_keys: dict[str, Ed25519PublicKey] | None = None, verify_responses: bool = True,
                 retries: int = 4, timeout: float = 15.0, transport: httpx.BaseTransport | None = None,
                 max_body_bytes: int = MAX_BODY_BYTES, in_progress_wait: float | None = None,
                 ledger_origin: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.key_id = key_id
        self.signer = signer(key_id, private_key)
        self.authority = authority or httpx.URL(self.base_url).netloc.decode()  # not host[:port]: fails here
        self._pinned_keys = network_keys or None  # given (or assigned): never replaced by a fetch
        self._fetched_keys: dict[str, Ed25519PublicKey] | None = None
        self._retired: dict[str, datetime] = {}  # key id -> retired_at, of the keys last fetched
        self._refetched_at: float | None = None  # time.monotonic() of the last fetch an unknown key made
        self._fetched_at: float | None = None  # time.monotonic() as the keys last fetched were asked for
        self._keys_max_age = KEYS_MAX_AGE_S  # how long those are held before they are fetched again
        self._refresh_failed_at: float | None = None  # time.monotonic() of the last refresh that failed
        self.verify_responses = verify_responses
        self.retries = retries
        self.max_body_bytes = max_body_bytes  # batch() refuses a larger body before sending it
        # after a lost answer, how long 409 request_in_progress is retried beyond the retries
        self.in_progress_wait = max(IN_PROGRESS_WAIT_S, timeout) if in_progress_wait is None else in_progress_wait
        self.timeout = timeout  # each attempt's whole time: httpx's bounds each read, not the answer
        # the log whose checkpoints are taken (a note's first line, "<public authority>/ledger"): a note the
        # network's key signed for another log (a staging network sharing the key) is refused; None: any
        self.ledger_origin = ledger_origin
        self.http = httpx.Client(timeout=timeout, transport=transport, verify=tls_context())
        self._senders = Senders("pointsnet-sdk")
        weakref.finalize(self, self._senders.close)  # a client dropped without close(): its idle threads end

    @property
    def authority(self) -> str:
        """What requests are signed with as ``@authority`` (``host[:port]``): by default the base URL's."""
        return self._authority

    @authority.setter
    def authority(self, authority: str) -> None:
        # parsed once, here (an authority that is not host[:port] fails here): each request only puts the
        # parsed host and port into its signed URL
        self._signed_host, self._signed_port = _host_and_port(httpx.URL(self.base_url).scheme, authority)
        self._authority = authority

    @property
    def network_keys(self) -> dict[str, Ed25519PublicKey] | None:
        """The keys answers are verified with: those the client was given (pinned), else the last fetched."""
        return self._pinned_keys or self._fetched_keys

    @network_keys.setter
    def network_keys(self, keys: dict[str, Ed25519PublicKey] | None) -> None:
        self._pinned_keys = keys or None

    # -- the generic call ---------------------------------------------------------------
    def call(self, method: str, path: str, body: Any = None, *, idempotency_key: str | None = None,
             params: dict | None = None) -> Answer:
        """Send one signed request, retrying transport errors, 5xx, 429 and request_in_progress safely."""
        method = method.upper()
        if method == "POST" and idempotency_key is None:
            idempotency_key = str(uuid.uuid4())
        content = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
        return self._call(method, path, content, idempotency_key, params)

    def _call(self, method: str, path: str, content: bytes, idempotency_key: str | None,
              params: dict | None) -> Answer:
        if self.verify_responses:
            # before anything is sent (a new client's first fetch, or a refresh of keys held past their maximum
            # age): keys that cannot be had refuse the call, never an answer already posted
            self._verification_keys()
        return self._retrying(lambda: self._send(method, path, content, idempotency_key, params),
                              in_progress=lambda answer: answer.status == 409 and isinstance(answer.body, dict)
                              and answer.body.get("code") == "request_in_progress")

    def _retrying(self, send: Callable[[], Answer], *,
                  in_progress: Callable[[Answer], bool] = lambda answer: False,
                  retries: int | None = None) -> Answer:
        """``send()`` again after a transport error, a 5xx, a 429 (or what ``in_progress`` names), with backoff
        and never sooner than a Retry-After asks, until it answers otherwise or the retries (the client's
        unless given) are spent; an error answer left is a PointsnetAPIError. Once an answer was lost (the
        request may be running at the network), what ``in_progress`` names is retried beyond the retries for
        up to ``in_progress_wait`` seconds after that: the first request is still running."""
        retries = self.retries if retries is None else retries
        delay = 0.2
        attempt = 0
        lost_at: float | None = None  # time.monotonic() when an answer was last lost
        while True:
            try:
                answer = send()
            except httpx.TransportError as exc:
                if attempt >= retries:
                    raise
                if isinstance(exc, ANSWER_LOST):
                    lost_at = time.monotonic()
            else:
                if answer.gateway:
                    lost_at = time.monotonic()
                waiting = in_progress(answer)
                if waiting and lost_at is not None:
                    # the request whose answer was lost is still running: waited for, not counted as a retry
                    if time.monotonic() - lost_at >= self.in_progress_wait:
                        raise PointsnetAPIError(answer.status, answer.body)
                    wait = self._retry_wait(answer, 0.5)  # as the network asks (1 s), the jitter kept small
                    if wait is None:
                        wait = delay * (0.5 + secrets.randbelow(100) / 100)
                        delay = min(delay * 2, 5.0)
                    time.sleep(wait)
                    continue
                if not (answer.status in RETRY_STATUSES or answer.status >= 500 or waiting) or attempt >= retries:
                    if answer.status >= 400:
                        raise PointsnetAPIError(answer.status, answer.body if isinstance(answer.body, dict) else {})
                    return answer
                wait = self._retry_wait(answer, delay)
                if wait:
                    time.sleep(wait)
                    delay = min(delay * 2, 5.0)
                    attempt += 1
                    continue
            time.sleep(delay * (0.5 + secrets.randbelow(100) / 100))
            delay = min(delay * 2, 5.0)
            attempt += 1

    @staticmethod
    def _retry_wait(answer: Answer, delay: float) -> float | None:
        """How long to wait before retrying an answer with a Retry-After: never sooner than the server asked
        (the jitter only adds to it), never absurdly late (a PointsnetAPIError); None without one."""
        retry_after = answer.headers.get("retry-after")
        if not (retry_after and retry_after.isascii() and retry_after.isdigit()):
            return None
        wait = float(retry_after)
        if wait > MAX_RETRY_AFTER_S:
            raise PointsnetAPIError(answer.status, answer.body if isinstance(answer.body, dict) else {})
        return wait + delay * secrets.randbelow(100) / 100

    def _send(self, method: str, path: str, content: bytes, idempotency_key: str | None,
              params: dict | None) -> Answer:
        headers = {"content-type": "application/json"} if content else {}
        if idempotency_key:
            headers["idempotency-key"] = idempotency_key
        request = self.http.build_request(method, self.base_url + path, content=content or None, headers=headers,
                                          params=params)
        # the URL whose @authority is signed: the request's, on the client's authority
        signed_url = request.url.copy_with(host=self._signed_host, port=self._signed_port)
        view = _View(method, str(signed_url), request.headers)
        components = REQUEST_COMPONENTS + (POST_COMPONENTS if method == "POST" else ())
        self.signer.sign(view, key_id=self.key_id, label=LABEL, tag=REQUEST_TAG, nonce=secrets.token_urlsafe(18),
                         covered_component_ids=components, body=content if method == "POST" else None)
        response = self._received(request)
        unsigned = "signature-input" not in response.headers
        if unsigned and response.status_code in GATEWAY_STATUSES:
            # A proxy's own 502/503/504 (the network never saw or never answered the request) is not
            # signed. Nothing in it is trusted: it only makes the call retry with the same key.
            return Answer(response.status_code, None, False, response.headers, gateway=True)
        if unsigned and response.status_code == TOO_LARGE:
            # A proxy's own 413 (nginx's client_max_body_size): the body never reached the network. Nothing in
            # it is trusted; it is the network's body_too_large, never retried (the same body meets it again).
            return Answer(TOO_LARGE, {
                "status": TOO_LARGE, "code": "body_too_large", "title": "Request body too large",
                "detail": f"a proxy in front of the network refused the {len(content)}-byte body as too large "
                          f"(its own unsigned 413: nothing was posted); split the batch into smaller ones"},
                False, response.headers)
        if self.verify_responses:
            self._verify(response, view)
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = response.text
        return Answer(response.status_code, body, response.headers.get("idempotent-replayed") == "true",
                      response.headers, response.content)

    def _received(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read its whole answer within the client's ``timeout``: httpx bounds each read,
        so an answer that trickles in (a byte now and then, from a broken proxy) would keep the call for as long
        as it goes on. Past the deadline it is a ReadTimeout: the answer is lost and the call retried with the
        same Idempotency-Key, as after any other timeout."""
        deadline = time.monotonic() + self.timeout
        response = self._headers_by(deadline, request)
        if response.is_stream_consumed:  # read already (an in-memory transport's answer)
            return response
        try:
            raw = bytearray()
            for chunk in response.iter_raw():
                raw += chunk
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(f"the answer took more than {self.timeout:g} s in all", request=request)
        finally:
            response.close()
        # the body as received, decoded as httpx decodes an answer read at once
        return httpx.Response(response.status_code, headers=response.headers, content=bytes(raw), request=request,
                              extensions=response.extensions)

    def _headers_by(self, deadline: float, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and wait for its status line and headers until ``deadline``: httpx bounds each read
        of them too, not their sum, so headers trickling in held the attempt for hours. The send runs on one of
        the client's sender threads (shared/sdk_sending.py); past the deadline the attempt is a ReadTimeout
        here, and an answer that still arrives there is closed unread."""
        sending = self._senders.submit(lambda: self.http.send(request, stream=True), _close_unread)
        try:
            return sending.wait(deadline - time.monotonic())
        except GaveUp:
            raise httpx.ReadTimeout(f"the answer took more than {self.timeout:g} s in all", request=request) from None

    def _verify(self, response: httpx.Response, view: _View) -> None:
        """Check the answer's signature. One signed by a key the client does not hold (the network replaced
        its signing key) fetches the network's keys once more and is checked again, unless the keys are
        pinned or the last such fetch was less than KEY_REFETCH_INTERVAL_S ago."""
        try:
            keys = self._verification_keys()
        except (PointsnetAPIError, httpx.HTTPError) as exc:  # the answer stays unverified: never a retry
            raise ResponseSignatureError(f"response to {view.method} {view.url} cannot be verified: the "
                                         f"network's keys cannot be fetched: {exc}") from exc
        resolver = _Resolver(keys)
        try:
            signed = self._check(response, view, resolver)
        except ResponseSignatureError:
            if resolver.unknown is None or self._pinned_keys or not self._may_refetch():
                raise
        else:
            self._refuse_after_rollout(signed, view)
            return
        self._refetched_at = time.monotonic()
        try:
            keys = self.fetch_network_keys()
        except (PointsnetAPIError, httpx.HTTPError) as exc:  # the answer stays unverified: never a retry
            raise ResponseSignatureError(f"response to {view.method} {view.url} is signed by key "
                                         f"{resolver.unknown!r}, and the network's keys cannot be fetched: "
                                         f"{exc}") from exc
        self._refuse_after_rollout(self._check(response, view, _Resolver(keys)), view)

    def _verification_keys(self) -> dict[str, Ed25519PublicKey]:
        """The keys to verify with: the pinned ones; else those fetched, fetched (again) when there are none
        or they are older than their maximum age. A refresh that fails (one attempt, tried again no sooner
        than KEY_REFETCH_INTERVAL_S later) keeps the keys held while they are younger than
        KEYS_STALE_LIMIT_S; older, the keys are fetched with the call's retries and a failure is raised."""
        if self._pinned_keys:
            return self._pinned_keys
        if self._fetched_keys is None or self._fetched_at is None:
            return self.fetch_network_keys()
        now = time.monotonic()
        age = now - self._fetched_at
        if age < self._keys_max_age:
            return self._fetched_keys
        if age >= KEYS_STALE_LIMIT_S:
            return self.fetch_network_keys()
        if self._refresh_failed_at is not None and now - self._refresh_failed_at < KEY_REFETCH_INTERVAL_S:
            return self._fetched_keys
        try:
            return self.fetch_network_keys(retries=0)
        except (PointsnetAPIError, ResponseSignatureError, httpx.HTTPError) as exc:
            self._refresh_failed_at = now
            why = f"status {exc.status}" if isinstance(exc, PointsnetAPIError) else f"{type(exc).__name__}: {exc}"
            log.warning("the network's keys could not be fetched again (%s); the keys fetched %d s ago are used "
                        "until they can be, for at most %d s after that fetch", why, age, KEYS_STALE_LIMIT_S)
            return self._fetched_keys

    def _may_refetch(self) -> bool:
        return self._refetched_at is None or time.monotonic() - self._refetched_at >= KEY_REFETCH_INTERVAL_S

    def _retired_at(self, key_id: str) -> datetime | None:
        """When the network retired this key, as its keys last fetched say (keys given to the client: never)."""
        return None if self._pinned_keys else self._retired.get(key_id)

    def _refuse_after_rollout(self, signed: list, view: _View) -> None:
        """An answer signed by a retired key later than RETIRED_KEY_ROLLOUT after its retirement (by its
        ``created``) is not believed: the key may have leaked, and the network's hosts have the new one."""
        for result in signed:
            key_id, created = result.parameters.get("keyid"), result.parameters.get("created")
            retired_at = self._retired_at(key_id)
            if retired_at is None:
                continue
            signed_at = datetime.fromtimestamp(created, timezone.utc) if isinstance(created, int) else None
            if signed_at is None or signed_at > retired_at + RETIRED_KEY_ROLLOUT:
                raise ResponseSignatureError(
                    f"response to {view.method} {view.url} is signed by key {key_id!r}, which the network retired "
                    f"at {retired_at.isoformat()}; a retired key is believed for answers signed at most "
                    f"{RETIRED_KEY_ROLLOUT} after that, and this one was signed at "
                    f"{signed_at.isoformat() if signed_at else 'no stated time'}")

    @staticmethod
    def _check(response: httpx.Response, view: _View, resolver: "_Resolver") -> list:
        verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=resolver)
        # the network's own allowance for a signature's `created` (its clock and ours may differ that much)
        verifier.max_clock_skew = timedelta(seconds=FRESHNESS_S)
        try:
            # The network signs an answer as it sends it: by our clock its `created` is at most the allowance
            # old (the network's clock behind ours by FRESHNESS_S), never a day (the library's default). The
            # library refuses created + max_age < now - max_clock_skew, so an answer more than
            # 2 x FRESHNESS_S old is refused: the allowance either way, with as much again to spare.
            return verifier.verify(_ResponseView(response.status_code, response.headers, view),
                                   max_age=timedelta(seconds=FRESHNESS_S), expect_tag=RESPONSE_TAG,
                                   require_components=response_components(LABEL), body=response.content)
        except Exception as exc:
            raise ResponseSignatureError(f"response to {view.method} {view.url} is not signed by the network: "
                                         f"{exc}") from exc

    def fetch_network_keys(self, *, retries: int | None = None) -> dict[str, Ed25519PublicKey]:
        """Fetch the network's public keys (held by this client until they are older than their maximum age:
        the keys endpoint's Cache-Control max-age, else KEYS_MAX_AGE_S; or until an answer is signed by a key
        not among them), retrying transport errors, 5xx and 429 as a call does; an error answer left after
        the retries is a PointsnetAPIError."""

        def send() -> Answer:
            response = self._received(self.http.build_request("GET", self.base_url + "/v1/network/keys"))
            body = response.content if response.status_code == 200 else _problem(response)
            return Answer(response.status_code, body, False, response.headers)

        asked_at = time.monotonic()  # the keys' age counts from the asking: what they say may be that old
        answer = self._retrying(send, retries=retries)
        if answer.status != 200:
            raise PointsnetAPIError(answer.status, answer.body)
        try:
            served = json.loads(answer.body)["keys"]
            keys = {key["kid"]: public_key_from_jwk(key) for key in served}
            retired = {key["kid"]: _instant(key["retired_at"]) for key in served if key.get("status") == "retired"}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ResponseSignatureError(f"the network's keys cannot be read: {exc}") from exc
        self._fetched_keys, self._retired = keys, retired
        self._fetched_at, self._keys_max_age = asked_at, _max_age(answer.headers)
        self._refresh_failed_at = None
        return keys

    def close(self) -> None:
        self._senders.close()  # a send still stuck on a broken proxy ends with its connection, closed here
        self.http.close()

    def __enter__(self) -> "PointsnetClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- operations -------------------------------------------------------------------------
    # Every write takes ``idempotency_key=`` (keyword only): one is made when it is None. To retry an operation
    # whose answer you did not get (your own process restarted, say), send it again with the same key and body.
    def enrol(self, *, idempotency_key: str | None = None, **fields: Any) -> dict:
        return self.call("POST", "/v1/members", fields, idempotency_key=idempotency_key).body

    def link_token(self, member_id: str, *, idempotency_key: str | None = None) -> dict:
        return self.call("POST", f"/v1/members/{member_id}/link-tokens", idempotency_key=idempotency_key).body

    def unlink(self, member_id: str, idempotency_key: str | None = None) -> dict:
        """The member withdraws its consent from you: your link to it goes (409 ``holds_open`` while you hold
        an open hold for it)."""
        return self.call("POST", f"/v1/members/{member_id}/unlink", idempotency_key=idempotency_key).body

    def member(self, member_id: str) -> dict:
        return self.call("GET", f"/v1/members/{member_id}").body

    def history(self, member_id: str, cursor: str | None = None, *, limit: int | None = None) -> dict:
        """One page of the member's movements, newest first (``limit``: the network's default 50, at most 500);
        the next page is ``history(member_id, page["next_cursor"])``."""
        params = ({"cursor": cursor} if cursor else {}) | ({"limit": limit} if limit is not None else {})
        return self.call("GET", f"/v1/members/{member_id}/history", params=params or None).body

    def earn(self, member_id: str, reference: str, *, idempotency_key: str | None = None, **fields: Any) -> dict:
        return self.call("POST", "/v1/earn", {"member_id": member_id, "reference": reference, **fields},
                         idempotency_key=idempotency_key).body

    def quote(self, member_id: str, reference: str, *, idempotency_key: str | None = None, **fields: Any) -> dict:
        return self.call("POST", "/v1/earn/quote", {"member_id": member_id, "reference": reference, **fields},
                         idempotency_key=idempotency_key).body

    def activity(self, member_id: str, activity: str, reference: str, *, idempotency_key: str | None = None,
                 **fields: Any) -> dict:
        """Award an activity's points (sign-up, survey, ...) as your earn rules define them."""
        return self.call("POST", "/v1/activities", {"member_id": member_id, "activity": activity,
                                                    "reference": reference, **fields},
                         idempotency_key=idempotency_key).body

    def burn(self, member_id: str, reference: str, points: int, *, idempotency_key: str | None = None,
             **fields: Any) -> dict:
        return self.call("POST", "/v1/burn", {"member_id": member_id, "reference": reference, "points": points,
                                               **fields}, idempotency_key=idempotency_key).body

    def hold(self, member_id: str, reference: str, points: int, *, idempotency_key: str | None = None) -> dict:
        return self.call("POST", "/v1/holds", {"member_id": member_id, "reference": reference, "points": points},
                         idempotency_key=idempotency_key).body

    def capture(self, hold_id: str, points: int | None = None, reference: str | None = None, *,
                idempotency_key: str | None = None) -> dict:
        body = {key: value for key, value in (("points", points), ("reference", reference)) if value is not None}
        return self.call("POST", f"/v1/holds/{hold_id}/capture", body, idempotency_key=idempotency_key).body

    def void(self, hold_id: str, reference: str | None = None, *, idempotency_key: str | None = None) -> dict:
        return self.call("POST", f"/v1/holds/{hold_id}/void", {"reference": reference} if reference else {},
                         idempotency_key=idempotency_key).body

    def reverse(self, reference: str, original_reference: str, points: int | None = None, *,
                idempotency_key: str | None = None) -> dict:
        body = {"reference": reference, "original_reference": original_reference}
        if points is not None:
            body["points"] = points
        return self.call("POST", "/v1/reversals", body, idempotency_key=idempotency_key).body

    def batch(self, events: list[dict], idempotency_key: str | None = None) -> dict:
        """Post up to 10,000 events at once. A body over ``max_body_bytes`` (the network's 8 MiB unless its
        operator set another limit) is refused here, before anything is sent: a BodyTooLargeError."""
        content = json.dumps({"events": events}, separators=(",", ":")).encode()
        if len(content) > self.max_body_bytes:
            raise BodyTooLargeError(
                f"the batch's body is {len(content):,} bytes, over the network's limit of {self.max_body_bytes:,} "
                f"bytes ({self.max_body_bytes / 1024 / 1024:g} MiB); nothing was sent: split the file into "
                f"smaller batches")
        return self._call("POST", "/v1/batch", content, idempotency_key or str(uuid.uuid4()), None).body

    def transactions(self, cursor: str | None = None, limit: int = 100) -> dict:
        params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        return self.call("GET", "/v1/transactions", params=params).body

    def iter_transactions(self, cursor: str | None = None, limit: int = 100) -> Iterator[dict]:
        """Every one of your transactions, oldest first, page after page (``limit`` a page) from ``cursor`` (the
        start without one) until the last page."""
        while True:
            page = self.transactions(cursor, limit)
            yield from page["transactions"]
            cursor = page["next_cursor"]
            if not cursor:
                return

    # -- statements and reports (docs/partner-integration.md, section 5) -----------------------
    def statements(self, cursor: str | None = None, limit: int = 100) -> dict:
        """One page of your settlement statements, newest first: ``statements`` and ``next_cursor``."""
        params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        return self.call("GET", "/v1/statements", params=params).body

    def statement(self, cycle: date | str) -> dict:
        """One cycle's statement (``YYYY-MM-DD`` or a date), its file and ``statement_sha256`` included."""
        return self.call("GET", f"/v1/statements/{_cycle(cycle)}").body

    def statement_csv(self, cycle: date | str) -> bytes:
        """The cycle's statement file, as its bytes came, once their SHA-256 is the ``statement_sha256`` the
        cycle's statement lists (else a StatementDigestError)."""
        listed = self.statement(cycle)["statement_sha256"]
        content = self.call("GET", f"/v1/statements/{_cycle(cycle)}/statement.csv").content
        got = hashlib.sha256(content).hexdigest()
        if not hmac.compare_digest(got, listed):
            raise StatementDigestError(f"the statement file of {_cycle(cycle)} has SHA-256 {got}, not the "
                                       f"{listed} its statement lists")
        return content

    def report(self, from_: date | str, to: date | str, format: str = "json") -> dict | bytes:
        """Your performance report for the cycles ``from_`` to ``to`` (included): the JSON document, or the
        file's bytes for ``format="csv"`` or ``"html"``."""
        answer = self.call("GET", "/v1/reports", params={"from": _cycle(from_), "to": _cycle(to), "format": format})
        return answer.body if format == "json" else answer.content

    # -- the tamper-evident ledger (docs/verifiable-ledger.md) ----------------------------------
    def _note_key(self, note: str) -> tuple[str, str, Ed25519PublicKey]:
        """The network key that signed a checkpoint note (name, key id, key), matched by the note's 4-byte
        key hash."""
        name = note.split("\n", 1)[0]
        if self.ledger_origin is not None and name != self.ledger_origin:
            raise ProofError(f"the checkpoint is of the log {name!r}, not {self.ledger_origin!r}")
        keys = self._verification_keys()
        for line in note.partition("\n\n")[2].splitlines():
            parts = line.split(" ")
            if len(parts) == 3 and parts[1] == name:
                try:
                    raw = base64.b64decode(parts[2], validate=True)
                except ValueError:
                    continue
                for key_id, key in keys.items():
                    if note_key_hash(name, key) == raw[:4]:
                        return name, key_id, key
        raise ProofError("the checkpoint is not signed by a network key")

    def verify_checkpoint(self, checkpoint: dict) -> ParsedCheckpoint:
        """Check a checkpoint's note signature with the network's key; its size and root must match. A note
        signed by a retired key is believed only if its time is at most RETIRED_KEY_ROLLOUT after the key's
        retirement."""
        name, key_id, key = self._note_key(checkpoint["note"])
        try:
            parsed = open_note(checkpoint["note"], name, key)
        except ValueError as exc:
            raise ProofError(str(exc)) from exc
        retired_at = self._retired_at(key_id)
        if retired_at is not None:
            stamps = [line.removeprefix("timestamp ") for line in parsed.extensions if line.startswith("timestamp ")]
            try:
                signed_at = _instant(stamps[0]) if len(stamps) == 1 else None
            except ValueError:
                signed_at = None
            if signed_at is None or signed_at > retired_at + RETIRED_KEY_ROLLOUT:
                raise ProofError(f"the checkpoint is signed by key {key_id!r}, which the network retired at "
                                 f"{retired_at.isoformat()}; a retired key is believed for notes signed at most "
                                 f"{RETIRED_KEY_ROLLOUT} after that, and this one was signed at "
                                 f"{signed_at.isoformat() if signed_at else 'no stated time'}")
        if parsed.tree_size != checkpoint["tree_size"] or \
                base64.b64encode(parsed.root_hash).decode() != checkpoint["root_hash"]:
            raise ProofError("the checkpoint's fields disagree with its signed note")
        return parsed

    def latest_checkpoint(self) -> dict:
        """The newest signed checkpoint, its signature verified."""
        checkpoint = self.call("GET", "/v1/checkpoints/latest").body
        self.verify_checkpoint(checkpoint)
        return checkpoint

    def verified_inclusion(self, transaction_id: str) -> dict:
        """Fetch your transaction's inclusion proof and check it: the leaf is the hash of the transaction's
        canonical encoding, the path leads to the root of a checkpoint signed by the network.

        A proof whose ``leaf_data`` is null (the transaction names a member not linked to you: not yours to
        see) is checked from its ``leaf_hash``: that leaf is in the signed tree, but neither its content nor
        that it is this transaction can be checked."""
        proof = self.call("GET", f"/v1/transactions/{transaction_id}/proof").body
        checkpoint = self.verify_checkpoint(proof["checkpoint"])
        if proof["leaf_data"] is None:
            try:
                leaf = base64.b64decode(proof["leaf_hash"], validate=True)
            except ValueError as exc:
                raise ProofError("leaf_hash is not base64") from exc
        else:
            try:
                data = base64.b64decode(proof["leaf_data"], validate=True)
            except ValueError as exc:
                raise ProofError("leaf_data is not base64") from exc
            leaf = merkle.leaf_hash(data)
            if base64.b64encode(leaf).decode() != proof["leaf_hash"]:
                raise ProofError("the leaf hash is not the hash of the transaction's encoding")
            # the E record's first field is the entry's id (docs/verifiable-ledger.md): compared by the
            # grammar, never searched for, since a reference (free text, later in the record) may spell the
            # same bytes
            asked = transaction_id.encode()
            if not data.startswith(b"pointsnet-leaf-v1\nE %d:%s," % (len(asked), asked)):
                raise ProofError("the proof is for another transaction")
        path = [base64.b64decode(h) for h in proof["inclusion_path"]]
        if proof["tree_size"] != checkpoint.tree_size or not merkle.verify_inclusion(
                proof["leaf_index"], checkpoint.tree_size, leaf, path, checkpoint.root_hash):
            raise ProofError("the inclusion proof does not lead to the checkpoint's root")
        return proof

    def verified_consistency(self, old: dict, new: dict) -> dict:
        """Check that checkpoint ``new`` extends checkpoint ``old`` (both signed): nothing in the first
        ``old['tree_size']`` leaves was rewritten, removed or reordered since."""
        first, second = self.verify_checkpoint(old), self.verify_checkpoint(new)
        if first.tree_size == 0:  # the empty tree begins every tree: nothing to prove, nothing to ask the network
            if first.root_hash != merkle.EMPTY_ROOT:
                raise ProofError("checkpoint 0 does not sign the empty tree's root")
            return {"from": 0, "to": second.tree_size, "consistency_path": []}
        proof = self.call("GET", "/v1/checkpoints/consistency",
                          params={"from": first.tree_size, "to": second.tree_size}).body
        path = [base64.b64decode(h) for h in proof["consistency_path"]]
        if not merkle.verify_consistency(first.tree_size, second.tree_size, first.root_hash, second.root_hash, path):
            raise ProofError(f"checkpoint {second.tree_size} is not consistent with checkpoint {first.tree_size}")
        return proof
