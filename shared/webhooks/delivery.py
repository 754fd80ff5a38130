"""Delivering the outbox: claim due deliveries, send them signed over HTTP, record what happened.

Three steps, and the HTTP call is in none of the transactions: a claim transaction leases
a batch of due deliveries (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers
never take the same row; SQLite has one writer), the calls run outside any transaction,
and one short transaction per delivery records the outcome. A worker that dies mid-call
loses its lease after ``LEASE`` and the delivery is sent again: at least once. Receivers
drop duplicates by ``webhook-id``.

One slow receiver holds up nobody else: a batch is claimed fairly per endpoint (every endpoint's
oldest due delivery before anyone's second, at most ``CLAIM_PER_ENDPOINT`` of one endpoint), so a
receiver that answers slowly but in time, with a backlog, fills no batch; a delivery takes at most
``DEADLINE`` in all (the name's resolution included), one endpoint is sent at most ``PER_ENDPOINT`` deliveries at once (the other
senders stay free for the other endpoints), outcomes are recorded as they come in, and once a
delivery to an endpoint has timed out, that endpoint's deliveries not yet started in the batch are
not sent, so a dead endpoint costs a run one timeout, not one per message.

A timeout pauses the endpoint: none of its deliveries is claimed until ``paused_until`` (an
operator's replay still goes). The pause is ``PAUSE_FIRST``, twice as long at each timeout after
it, up to ``PAUSE_LONGEST``, and ends at the first delivery the endpoint takes. A delivery not sent
because of the timeout is not a try: its try is given back and it waits out the pause, so a backlog
behind one slow moment keeps its tries; and a dead receiver's backlog is claimed once a pause, not
in every run ahead of the other partners' deliveries. A try that did time out keeps its schedule
(``schedule.next_attempt_at``), and is not sent before the pause is over either.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import and_, delete, func, insert, or_, select, true, update

from shared.db.database import Tx
from shared.db.types import new_id
from shared.models import (
    Member, MemberErasure, MemberLink, Partner, Termination, WebhookAttempt, WebhookDelivery, WebhookEndpoint,
)
from shared.tls import tls_context
from shared.webhooks.dialing import PublicOnlyBackend, PublicOnlyTransport, anywhere, refused_target, within
from shared.webhooks.endpoints import end_pause, secrets_in_force
from shared.webhooks.errors import (
    DeliveryCancelled, DeliveryPending, EndpointDisabled, MemberNotLinked, UnknownDelivery,
)
from shared.webhooks.outbox import (ERASED, SETTLEMENT_EVENTS, TERMINATED, UNLINKED, body_data,
                                     cancel_deliveries)
from shared.webhooks.schedule import next_attempt_at
from shared.webhooks.signing import webhook_headers

log = logging.getLogger("pointsnet.webhooks")
deliveries_t, endpoints_t, attempts_t = WebhookDelivery.__table__, WebhookEndpoint.__table__, WebhookAttempt.__table__
partners_t, terminations_t = Partner.__table__, Termination.__table__
members_t, links_t, erasures_t = Member.__table__, MemberLink.__table__, MemberErasure.__table__

# longer than a batch can take: BATCH deliveries, SENDERS at once, DEADLINE each (105 s)
LEASE = timedelta(minutes=5)
TIMEOUT = httpx.Timeout(10.0, connect=5.0)  # each step: connecting, each read, each write
DEADLINE = 15.0  # seconds one delivery may take in all: resolution, connection, TLS, request, answer
BATCH = 50
SENDERS = 8
PER_ENDPOINT = 4  # deliveries to one endpoint sent at once: a slow one leaves the other senders free
CLAIM_PER_ENDPOINT = 3 * PER_ENDPOINT  # of one endpoint in a batch: a slow one's backlog fills none
ROUNDS = 40  # batches a run sends at most: 480 of one endpoint's backlog, about the 500 of 10 whole batches
MAX_ERROR = 500
ANSWER_BYTES = 4096  # of a failing receiver's body, read at most: enough for MAX_ERROR characters of UTF-8
RETENTION = timedelta(days=30)  # delivered messages and their attempts are kept this long
REPLAYABLE = ("delivered", "dead")
PAUSE_FIRST = timedelta(seconds=30)  # an endpoint's pause after its first timeout; twice as long each time after
PAUSE_LONGEST = timedelta(hours=1)
SKIPPED = "not sent: an earlier delivery to this URL timed out in this run"
CLAIM_TRIES = 10  # batches a claim may find all cancelled (``cancel_refused``) before it gives up


@dataclass(frozen=True)
class Claimed:
    id: str
    claim_token: str
    url: str
    body: str
    secrets: list[str]
    attempts: int
    endpoint_id: str | None = None
    previous_attempt_at: datetime | None = None  # before this claim: given back with the try if not sent


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int
    timed_out: bool = False
    skipped: bool = False  # not sent (an earlier delivery to its URL timed out in the run): not a try

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def claim_due(tx: Tx, limit: int = BATCH, delivery_ids: list[str] | None = None) -> list[Claimed]:
    """Lease due deliveries to this worker (their next try moves past the lease). The deliveries of an
    endpoint paused after a timeout are not due before its pause is over, unless named
    (``delivery_ids``: an operator's replay or retry).

    Fair per endpoint: every endpoint's oldest due delivery before any endpoint's second, and so on,
    at most ``CLAIM_PER_ENDPOINT`` of one endpoint; each endpoint's own in the order they came due. A
    receiver that answers slowly (but in time: never paused) with a backlog so fills no batch, and a
    batch lasts at most ``CLAIM_PER_ENDPOINT / PER_ENDPOINT`` deliveries to it one after the other.

    A delivery its partner may no longer hear (``refusals``: the member unlinked or erased, the partner
    terminated, after it was queued) is cancelled instead (``cancel_refused``), never claimed."""
    serving = [endpoints_t.c.status == "active"]
    if delivery_ids is None:
        serving.append(or_(endpoints_t.c.paused_until.is_(None), endpoints_t.c.paused_until <= tx.now))
    pending = (deliveries_t.c.status == "pending", deliveries_t.c.next_attempt_at <= tx.now)
    due = (*pending, deliveries_t.c.endpoint_id.in_(select(endpoints_t.c.id).where(*serving)))
    if delivery_ids is None:
        # the turns are counted over each serving endpoint's first CLAIM_PER_ENDPOINT due rows only, read
        # off ix_webhook_deliveries_endpoint_due, not over the whole backlog (a sort of every due row,
        # each claim). The one difference between the databases is how they are joined to the endpoint:
        # PostgreSQL takes them with LATERAL; SQLite has none, so there its rows are those whose id is
        # among them (a subquery run once per endpoint)
        first = (select(deliveries_t.c.id, deliveries_t.c.endpoint_id, deliveries_t.c.next_attempt_at)
                 .where(deliveries_t.c.endpoint_id == endpoints_t.c.id, *pending)
                 .order_by(deliveries_t.c.next_attempt_at, deliveries_t.c.id).limit(CLAIM_PER_ENDPOINT))
        if tx.is_postgres:
            rows = first.lateral("first_due")
            source = endpoints_t.join(rows, true())
        else:
            rows = deliveries_t.alias("first_due")
            source = endpoints_t.join(rows, rows.c.id.in_(first.with_only_columns(deliveries_t.c.id)
                                                          .correlate(endpoints_t)))
        where = serving
    else:  # named (an operator's replay): those few rows, found by id
        rows = source = deliveries_t
        where = [*due, deliveries_t.c.id.in_(delivery_ids)]
    turn = func.row_number().over(partition_by=rows.c.endpoint_id, order_by=(rows.c.next_attempt_at, rows.c.id))
    ranked = (select(rows.c.id, rows.c.next_attempt_at.label("due_at"), turn.label("turn"))
              .select_from(source).where(*where).subquery())
    # the turns are counted in a subquery (a window function cannot be locked at its own level); the rows
    # are locked in turn order until the batch is full: on PostgreSQL a row another worker holds is
    # skipped, and one it claimed meanwhile is not due any more (the conditions are checked again on
    # the row as it then is)
    query = (select(deliveries_t.c.id, deliveries_t.c.last_attempt_at)
             .join(ranked, ranked.c.id == deliveries_t.c.id).where(ranked.c.turn <= CLAIM_PER_ENDPOINT, *due)
             .order_by(ranked.c.turn, ranked.c.due_at, ranked.c.id).limit(limit))
    if tx.is_postgres:
        query = query.with_for_update(skip_locked=True, of=deliveries_t)
    # what the partner may no longer hear (``refusals``: an event committed as the member was unlinked or
    # erased, or the partner terminated; one a previous release queued) is cancelled, not sent; a batch
    # all cancelled is claimed again, so that it does not end the run
    for _ in range(CLAIM_TRIES):
        chosen = tx.session.execute(query).all()
        refused = cancel_refused(tx, [row.id for row in chosen])
        chosen = [row for row in chosen if row.id not in refused]
        if chosen or not refused:
            break
    if not chosen:
        return []
    previous = dict(chosen)
    ids = list(previous)
    token = new_id("clm")
    # the retry window opens at the first attempt, not when the message was queued: a message that
    # waited (endpoint disabled, workers down) still gets its 3 days of retries
    tx.session.execute(update(deliveries_t).where(deliveries_t.c.id.in_(ids), deliveries_t.c.attempts == 0)
                       .values(retry_from=tx.now))
    tx.session.execute(update(deliveries_t).where(deliveries_t.c.id.in_(ids)).values(
        claim_token=token, next_attempt_at=tx.now + LEASE, attempts=deliveries_t.c.attempts + 1,
        last_attempt_at=tx.now))
    rows = tx.session.execute(
        select(deliveries_t.c.id, deliveries_t.c.body, deliveries_t.c.attempts, deliveries_t.c.endpoint_id,
               endpoints_t.c.url,
               endpoints_t.c.secret, endpoints_t.c.previous_secret, endpoints_t.c.previous_secret_expires_at)
        .join(endpoints_t, endpoints_t.c.id == deliveries_t.c.endpoint_id)
        .where(deliveries_t.c.id.in_(ids))).all()
    place = {delivery_id: n for n, delivery_id in enumerate(ids)}
    rows = sorted(rows, key=lambda row: place[row.id])
    return [Claimed(row.id, token, row.url, row.body,
                    secrets_in_force(row.secret, row.previous_secret, row.previous_secret_expires_at, tx.now),
                    row.attempts, row.endpoint_id, previous[row.id]) for row in rows]


def send(client: httpx.Client, claimed: Claimed, clock, key, *, allow_private: bool = True) -> Outcome:
    """One signed POST, timestamped when it leaves; never raises (a failure is an outcome). It takes
    at most ``DEADLINE`` in all, the check's resolution included, when the client's transport is the
    delivery job's (``PublicOnlyTransport``).

    The target is checked again here (a name may resolve elsewhere since it was registered), under
    the very name httpx dials; and again by the delivery job's client when it connects
    (``PublicOnlyTransport``), on the very addresses it connects to."""
    started = time.perf_counter()
    with within(DEADLINE):
        return _send(client, claimed, clock, key, allow_private, started)


def _send(client: httpx.Client, claimed: Claimed, clock, key, allow_private: bool, started: float) -> Outcome:
    if not allow_private:
        from shared.webhooks.endpoints import dial_host, private_address
        from shared.webhooks.errors import InvalidWebhookUrl

        try:  # the name httpx dials (IDNA 2008), not Python's idna codec's (IDNA 2003)
            found = private_address(dial_host(claimed.url))
        except InvalidWebhookUrl as exc:
            return Outcome(None, _kept(f"refused: {exc}"), 0)
        if found is not None:
            return Outcome(None, _refusal(found), 0)
    timestamp = int(clock.now().timestamp())
    # no compression asked for: a failing receiver's page is read as it comes, a few kB of it (_answer)
    headers = webhook_headers(claimed.id, timestamp, claimed.body, claimed.secrets, key) | {
        "accept-encoding": "identity"}
    try:
        with client.stream("POST", claimed.url, content=claimed.body.encode(), headers=headers) as response:
            error, late = (None, False) if 200 <= response.status_code < 300 else _answer(response)
        took = time.perf_counter() - started
        if late:  # the status came, its page did not within the time: a slow receiver, timed out as one
            return Outcome(response.status_code, _kept(f"timed out after {took:.1f} s reading the answer to its "
                                                       f"{response.status_code}: {error or ''}"),
                           int(took * 1000), timed_out=True)
        return Outcome(response.status_code, error, int(took * 1000))
    except httpx.TimeoutException as exc:
        took = time.perf_counter() - started
        return Outcome(None, _kept(f"timed out after {took:.1f} s ({type(exc).__name__}: {exc})"),
                       int(took * 1000), timed_out=True)
    except Exception as exc:  # noqa: BLE001 - refused connection, timeout, TLS, a URL httpx rejects...
        refused = refused_target(exc)
        error = _refusal(refused.address) if refused else _kept(f"{type(exc).__name__}: {exc}")
        return Outcome(None, error, int((time.perf_counter() - started) * 1000))


def _answer(response: httpx.Response) -> tuple[str | None, bool]:
    """The start of a failing receiver's body, for the operator's eyes, and whether reading it ran out of
    time: only ``ANSWER_BYTES`` are read off the wire (a receiver's page may be endless or slow), and what
    cannot be read is left unread. A page that does not come within the delivery's time (``DEADLINE``, or a
    read's) makes the delivery a timeout, as a status that never came does: the endpoint pauses and its
    other deliveries of the batch are not sent. The request asks for no compression; a page compressed
    anyway (gzip or deflate) is inflated only up to ``ANSWER_BYTES`` (a few kB on the wire may inflate to
    gigabytes), one in another encoding is not decoded at all."""
    raw, late = b"", False
    try:
        for chunk in response.iter_raw():  # as it came: httpx would inflate a compressed page whole
            raw += chunk
            if len(raw) >= ANSWER_BYTES:
                break
    except httpx.TimeoutException:
        late = True
    except httpx.HTTPError:  # the status is the answer; its body is only a courtesy
        pass
    raw = _inflated(raw[:ANSWER_BYTES], response.headers.get("content-encoding", ""))
    if raw is None:
        return _kept(f"(an answer in {response.headers['content-encoding'][:40]} encoding, not decoded)"), late
    try:
        text = raw.decode(response.charset_encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        text = raw.decode("utf-8", errors="replace")
    return _kept(text), late


def _inflated(raw: bytes, encoding: str) -> bytes | None:
    """The first ``ANSWER_BYTES`` of a body in its ``Content-Encoding`` (none, gzip or deflate;
    None for another one), never more in memory."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        return None
    # gzip; deflate is zlib-wrapped, or bare as some servers send it
    for wbits in ((zlib.MAX_WBITS | 16,) if encoding != "deflate" else (zlib.MAX_WBITS, -zlib.MAX_WBITS)):
        try:
            return zlib.decompressobj(wbits).decompress(raw, ANSWER_BYTES)
        except zlib.error:
            continue
    return None


def _kept(text: str) -> str | None:
    """Text as an attempt keeps it: at most ``MAX_ERROR`` characters, a NUL written ``\\x00``
    (PostgreSQL text cannot hold one: the attempt could not be recorded at all)."""
    return text.replace("\x00", "\\x00")[:MAX_ERROR] or None


def _refusal(address) -> str:
    return f"refused: the URL resolves to a non-public address ({address})"[:MAX_ERROR]


def record(tx: Tx, claimed: Claimed, outcome: Outcome) -> str:
    """Record one attempt; answers the delivery's new status ('stale' if the lease was lost;
    'skipped' for a delivery not sent, see ``_put_back``)."""
    if outcome.skipped:
        return _put_back(tx, claimed)
    tx.session.execute(insert(attempts_t).values(delivery_id=claimed.id, attempted_at=tx.now,
                                                 status_code=outcome.status_code, error=outcome.error,
                                                 duration_ms=outcome.duration_ms))
    row = tx.session.execute(select(deliveries_t.c.retry_from, deliveries_t.c.claim_token)
                             .where(deliveries_t.c.id == claimed.id)).one()
    if outcome.timed_out:
        _pause(tx, claimed.endpoint_id)
    elif outcome.ok:
        _unpause(tx, claimed.endpoint_id)
    if row.claim_token != claimed.claim_token:  # our lease ran out and another worker took it over
        return "stale"
    values = {"claim_token": None, "last_status_code": outcome.status_code, "last_error": outcome.error}
    if outcome.ok:
        values |= {"status": "delivered", "delivered_at": tx.now}
    else:
        retry_at = next_attempt_at(claimed.attempts, row.retry_from, tx.now)  # a pause may delay it further
        values |= ({"status": "dead", "dead_at": tx.now} if retry_at is None else {"next_attempt_at": retry_at})
    done = tx.session.execute(update(deliveries_t).where(
        deliveries_t.c.id == claimed.id, deliveries_t.c.claim_token == claimed.claim_token).values(**values))
    return values.get("status", "pending") if done.rowcount == 1 else "stale"


def _put_back(tx: Tx, claimed: Claimed) -> str:
    """A delivery claimed but not sent, because an earlier delivery to its URL timed out in the run:
    it was no try, so the try the claim counted is given back (and its last try's time), no attempt
    is logged, and it is due when its endpoint's pause is over (the endpoint is paused now if the
    timeout's outcome is not recorded yet)."""
    paused_until = _pause(tx, claimed.endpoint_id) or tx.now + PAUSE_FIRST
    done = tx.session.execute(update(deliveries_t).where(
        deliveries_t.c.id == claimed.id, deliveries_t.c.claim_token == claimed.claim_token).values(
        claim_token=None, attempts=deliveries_t.c.attempts - 1, last_attempt_at=claimed.previous_attempt_at,
        next_attempt_at=max(paused_until, tx.now)))
    return "skipped" if done.rowcount == 1 else "stale"


def pause_after(pauses: int) -> timedelta:
    """How long an endpoint is paused at a timeout after ``pauses`` earlier ones (since it last took a
    delivery): ``PAUSE_FIRST``, doubling each time, at most ``PAUSE_LONGEST``."""
    return min(PAUSE_FIRST * 2 ** min(pauses, 20), PAUSE_LONGEST)


def _pause(tx: Tx, endpoint_id: str | None) -> datetime | None:
    """Pause the endpoint after a timeout, unless a pause is already running (the same run's other
    timeouts, or a replay during a pause); answers the end of the endpoint's pause."""
    if endpoint_id is None:
        return None
    # locked: two workers recording timeouts of the endpoint at once pause it once, not twice over
    row = tx.session.execute(select(endpoints_t.c.paused_until, endpoints_t.c.pauses)
                             .where(endpoints_t.c.id == endpoint_id).with_for_update()).one_or_none()
    if row is None:
        return None
    if row.paused_until is not None and row.paused_until > tx.now:
        return row.paused_until
    until = tx.now + pause_after(row.pauses)
    tx.session.execute(update(endpoints_t).where(endpoints_t.c.id == endpoint_id).values(
        paused_until=until, pauses=endpoints_t.c.pauses + 1))
    return until


def _unpause(tx: Tx, endpoint_id: str | None) -> None:
    """The endpoint took a delivery: its pausing starts over, and what waited for a pause still running
    is due now (nothing written when it was not paused)."""
    if endpoint_id is None:
        return
    paused = or_(endpoints_t.c.pauses > 0, endpoints_t.c.paused_until.is_not(None))
    row = tx.session.execute(select(endpoints_t.c.paused_until).where(endpoints_t.c.id == endpoint_id, paused)).first()
    if row is None:
        return
    tx.session.execute(update(endpoints_t).where(endpoints_t.c.id == endpoint_id).values(paused_until=None, pauses=0))
    if row.paused_until is not None:
        end_pause(tx, endpoint_id, row.paused_until)


def deliver_due(network, *, limit: int = BATCH, rounds: int = ROUNDS, delivery_ids: list[str] | None = None) -> dict:
    """The delivery job: claim, send and record until nothing is due (or ``rounds`` batches)."""
    counts = {"delivered": 0, "retrying": 0, "dead": 0, "stale": 0}
    verify = tls_context()  # first: a context that cannot be made (a bad SSL_CERT_FILE) claims nothing
    claimed = network.tx(lambda tx: claim_due(tx, limit, delivery_ids)) if rounds > 0 else []
    if not claimed:  # the job runs every few seconds, mostly to find nothing due: no client made then
        return counts
    key = network.signing_key
    allow = network.settings.webhook_allow_private_targets
    # refusing private targets, the client connects only to addresses it judged public, the ones it
    # resolved (no second DNS answer in between); and so straight to them, never through a proxy. Allowing
    # them, it connects to whatever the name resolves to, straight too: either way the name's resolution
    # is bounded by the delivery's time, which the system resolver httpx would use is not
    transport = PublicOnlyTransport(verify, PublicOnlyBackend(judge=anywhere) if allow else None)
    with httpx.Client(timeout=TIMEOUT, follow_redirects=False, verify=verify, transport=transport) as client, \
            ThreadPoolExecutor(max_workers=SENDERS) as pool:
        for round_ in range(rounds):
            if round_:
                claimed = network.tx(lambda tx: claim_due(tx, limit, delivery_ids))
            if not claimed:
                break
            sent = _send_batch(pool, claimed, lambda c: send(client, c, network.clock, key, allow_private=allow))
            for item, outcome in sent:
                status = _record(network, item, outcome)
                if status is None:  # counted apart, only when it happens: sent again when its lease ends
                    counts["unrecorded"] = counts.get("unrecorded", 0) + 1
                    continue
                if status == "skipped":  # counted apart, only when it happens: not a try
                    counts["skipped"] = counts.get("skipped", 0) + 1
                    continue
                counts["retrying" if status == "pending" else status] += 1
                if not outcome.ok:
                    log.info("webhook %s to %s failed: %s %s", item.id, _logged(item.url), outcome.status_code,
                             outcome.error)
    return counts


def _logged(url: str) -> str:
    """An endpoint's URL as the log shows it: without its query and fragment, where a partner may put a
    token its receiver checks (the operators see the whole URL with `pointsnet webhooks show`)."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(query=None, fragment=None)) + ("?…" if parsed.query or parsed.fragment else "")


def _send_batch(pool: ThreadPoolExecutor, claimed: list[Claimed], send_one):
    """Send a claimed batch; yields each (delivery, outcome) as soon as it is known, once each.

    Each endpoint (its URL) is a lane of at most ``PER_ENDPOINT`` senders, their first ones queued
    before anyone's second, so one slow endpoint never takes every sender. Once a delivery of a lane
    has timed out, the lane's deliveries not yet started are not sent: their outcome says so (``skipped``)."""
    lanes: dict[str, deque[Claimed]] = {}
    for item in claimed:
        lanes.setdefault(item.url, deque()).append(item)
    timed_out: set[str] = set()
    lock, done = threading.Lock(), queue.Queue()

    def lane(url: str) -> None:
        while True:
            with lock:
                if not lanes[url]:
                    return
                item, skip = lanes[url].popleft(), url in timed_out
            if skip:
                outcome = Outcome(None, SKIPPED, 0, skipped=True)
            else:
                try:
                    outcome = send_one(item)
                except Exception as exc:  # noqa: BLE001 - send never raises; if it did, still one outcome
                    outcome = Outcome(None, _kept(f"{type(exc).__name__}: {exc}"), 0)
            if outcome.timed_out:
                with lock:
                    timed_out.add(url)
            done.put((item, outcome))

    for turn in range(PER_ENDPOINT):
        for url, items in list(lanes.items()):
            if len(items) > turn:
                pool.submit(lane, url)
    for _ in claimed:
        yield done.get()


def _record(network, claimed: Claimed, outcome: Outcome) -> str | None:
    """``record`` in its own transaction; one outcome that cannot be recorded never stops the batch's
    others. It is tried once more without the receiver's text (the likely culprit); None if that fails
    too (the delivery keeps its lease and is sent again when it ends)."""
    try:
        return network.tx(lambda tx: record(tx, claimed, outcome))
    except Exception:  # noqa: BLE001 - whatever it was, the rest of the batch is recorded
        log.exception("webhook %s: its attempt could not be recorded; recording it without the answer", claimed.id)
    bare = Outcome(outcome.status_code, "(the receiver's answer could not be stored)", outcome.duration_ms,
                   timed_out=outcome.timed_out, skipped=outcome.skipped)
    try:
        return network.tx(lambda tx: record(tx, claimed, bare))
    except Exception:  # noqa: BLE001
        log.exception("webhook %s: its attempt could not be recorded; it is sent again after its lease", claimed.id)
        return None


# -- operators -----------------------------------------------------------------------------------

def _delivery_view(row) -> dict:
    def iso(value):
        return value.isoformat() if value is not None else None

    return {"delivery_id": row.id, "partner_id": row.partner_id, "event_type": row.event_type,
            "status": row.status, "attempts": row.attempts, "created_at": iso(row.created_at),
            "next_attempt_at": iso(row.next_attempt_at) if row.status == "pending" else None,
            "last_attempt_at": iso(row.last_attempt_at), "last_status_code": row.last_status_code,
            "last_error": row.last_error, "delivered_at": iso(row.delivered_at), "dead_at": iso(row.dead_at)}


def _deliveries_where(query, dead_only: bool, partner_id: str | None, status: str | None = None):
    if dead_only:
        query = query.where(deliveries_t.c.status == "dead")
    if status:
        query = query.where(deliveries_t.c.status == status)
    if partner_id:
        query = query.where(deliveries_t.c.partner_id == partner_id)
    return query


def list_deliveries(tx: Tx, *, dead_only: bool = False, partner_id: str | None = None,
                    limit: int = 100, offset: int = 0, status: str | None = None) -> list[dict]:
    """Deliveries newest first; ``dead_only``: the dead letters an operator may replay."""
    query = select(deliveries_t).order_by(deliveries_t.c.created_at.desc(), deliveries_t.c.id.desc())
    query = _deliveries_where(query, dead_only, partner_id, status).offset(offset).limit(limit)
    return [_delivery_view(row) for row in tx.session.execute(query)]


def count_deliveries(tx: Tx, *, dead_only: bool = False, partner_id: str | None = None,
                     status: str | None = None) -> int:
    """How many deliveries ``list_deliveries`` pages through with the same filters."""
    query = _deliveries_where(select(func.count()).select_from(deliveries_t), dead_only, partner_id, status)
    return int(tx.session.execute(query).scalar_one())


def delivery_detail(tx: Tx, delivery_id: str) -> dict:
    row = tx.session.execute(select(deliveries_t).where(deliveries_t.c.id == delivery_id)).one_or_none()
    if row is None:
        raise UnknownDelivery(f"no webhook delivery {delivery_id}")
    attempts = tx.session.execute(select(attempts_t).where(attempts_t.c.delivery_id == delivery_id)
                                  .order_by(attempts_t.c.id)).all()
    return _delivery_view(row) | {"body": row.body, "attempt_log": [
        {"attempted_at": a.attempted_at.isoformat(), "status_code": a.status_code, "error": a.error,
         "duration_ms": a.duration_ms} for a in attempts]}


def queue_replay(tx: Tx, delivery_id: str) -> dict:
    """Send a delivery again now (same ``webhook-id``), starting afresh: its attempts count from zero
    again, so the backoff starts over (5 s after a first failure) within a fresh 3-day retry window.
    Every earlier attempt stays in its attempt log. A delivered or dead delivery is queued again; a
    pending one waiting for its next try (hours away, on a long backoff) is due now instead.

    One whose endpoint is disabled is refused (``EndpointDisabled``), nothing changed: the job sends
    nothing to a disabled endpoint. One a worker is sending right now (pending, its lease still running)
    is refused (``DeliveryPending``): resetting its lease would throw that send's outcome away and send it again.
    The state is checked by the UPDATE itself, so a replay never resets a delivery a worker leased
    meanwhile (on PostgreSQL the UPDATE waits for the claim and then finds it leased).

    A replay tells the partner nothing it may no longer hear (``reachable``): one naming a member no
    longer linked to the partner, or erased, is refused (``MemberNotLinked``), and so is one about a
    member to a terminated partner (``PartnerTerminated``); a cancelled one is never sent (``DeliveryCancelled``)."""
    reachable(tx, delivery_id)
    # locked first (PostgreSQL): a prune deleting it meanwhile is waited for, and then it is unknown
    row = tx.session.execute(select(deliveries_t.c.id, deliveries_t.c.status, deliveries_t.c.partner_id,
                                    deliveries_t.c.endpoint_id)
                             .where(deliveries_t.c.id == delivery_id).with_for_update(key_share=True)).one_or_none()
    if row is None:
        raise UnknownDelivery(f"no webhook delivery {delivery_id}")
    if row.status == "cancelled":
        raise DeliveryCancelled(f"webhook delivery {delivery_id} was cancelled (the member withdrew its consent "
                                f"or was erased, or the partner was terminated): it is never sent")
    endpoint = tx.session.execute(select(endpoints_t.c.status).where(endpoints_t.c.id == row.endpoint_id)).scalar()
    if endpoint != "active":  # the job sends nothing to it: the replay would send nothing either
        raise EndpointDisabled(f"webhook delivery {delivery_id} is not replayed: partner {row.partner_id}'s webhook "
                               f"endpoint is disabled, so nothing would be sent; enable it again (`webhooks set`), "
                               f"then replay it")
    # not leased: no claim, or a claim whose lease ran out (its worker died; it is due again anyway)
    idle = or_(deliveries_t.c.claim_token.is_(None), deliveries_t.c.next_attempt_at <= tx.now)
    replayable = or_(deliveries_t.c.status.in_(REPLAYABLE), and_(deliveries_t.c.status == "pending", idle))
    done = tx.session.execute(update(deliveries_t).where(deliveries_t.c.id == delivery_id, replayable).values(
        status="pending", attempts=0, next_attempt_at=tx.now, retry_from=tx.now, claim_token=None, dead_at=None,
        delivered_at=None))
    if done.rowcount != 1:
        raise DeliveryPending(f"webhook delivery {delivery_id} is being sent right now: replay it once that "
                              f"attempt is recorded (`webhooks show-delivery {delivery_id}`)")
    return {"delivery_id": delivery_id, "previous_status": row.status}


def reachable(tx: Tx, delivery_id: str) -> None:
    """Refuse to send again a delivery its partner may no longer hear (``refusals``, as a replay): about a
    member, to a terminated partner (``PartnerTerminated``); naming a member (a duplicate: the member it was
    merged into) not linked to the partner now, or erased (``MemberNotLinked``). ``member.unlinked`` tells
    of the unlink itself, and ``member.erased`` of the erasure: those go again while the partner may hear
    them — a ``member.unlinked`` not once the member is erased (only ``member.erased`` names it then), nor
    once the member is linked to the partner again (the unlink it tells of no longer holds: ``MemberNotLinked`` too).

    On PostgreSQL the partner's and the member's rows are read FOR SHARE before the delivery is locked,
    in the order a termination, an unlink and an erasure lock them: one of those running is waited for
    (and then seen), and one starting waits for this replay and cancels what it queued."""
    row = tx.session.execute(select(*_REACH_COLUMNS, deliveries_t.c.status)
                             .where(deliveries_t.c.id == delivery_id)).one_or_none()
    if row is None or row.event_type in SETTLEMENT_EVENTS or row.status == "cancelled":
        return  # unknown or cancelled: queue_replay says so
    from shared.partners.lifecycle import PartnerTerminated

    if tx.is_postgres:
        tx.session.execute(select(partners_t.c.id).where(partners_t.c.id == row.partner_id)
                           .with_for_update(read=True))
        member_id = named_member(row.body)
        for _ in range(100 if member_id is not None else 0):  # a duplicate's survivor, and so on
            member = tx.session.execute(select(members_t.c.merged_into).where(members_t.c.id == member_id)
                                        .with_for_update(read=True)).first()
            if member is None or member.merged_into is None:
                break
            member_id = member.merged_into
    refusal = refusals(tx, [row], replaying=True).get(delivery_id)
    if refusal is None:
        return
    why, member_id = refusal
    if why == "terminated":
        raise PartnerTerminated(f"webhook delivery {delivery_id} is not replayed: partner {row.partner_id} was "
                                f"terminated, and hears of no member any more (settlement.ready alone)")
    if why == "erased":
        raise MemberNotLinked(f"webhook delivery {delivery_id} is not replayed: member {member_id} was erased, "
                              f"and no event names it again")
    if why == "relinked":
        raise MemberNotLinked(f"webhook delivery {delivery_id} is not replayed: member {member_id} is linked to "
                              f"partner {row.partner_id} again, so the unlink it tells of no longer holds")
    raise MemberNotLinked(f"webhook delivery {delivery_id} is not replayed: member {member_id} is not linked "
                          f"to partner {row.partner_id} any more (its consent was withdrawn)")


# what a refusal leaves in a delivery the job cancels instead of sending (``claim_due``)
RELINKED = "not sent: the member is linked to the partner again, so the unlink it tells of no longer holds"
REFUSED = {"terminated": TERMINATED, "erased": ERASED, "unlinked": UNLINKED, "relinked": RELINKED}
_REACH_COLUMNS = (deliveries_t.c.id, deliveries_t.c.partner_id, deliveries_t.c.event_type, deliveries_t.c.body)


def named_member(body: str) -> str | None:
    """The member a delivery's body names (``data.member_id``; a ``member.merged``'s survivor), if any."""
    member_id = body_data(body).get("member_id")
    return member_id if isinstance(member_id, str) else None


def refusals(tx: Tx, rows, *, replaying: bool) -> dict[str, tuple[str, str | None]]:
    """The one rule of what a partner may no longer hear, for a replay (``reachable``) and for the job's
    claim (``claim_due``): of ``rows`` (``id``, ``partner_id``, ``event_type``, ``body``),
    those refused, each as (why, the member named) — why ``terminated``: about a member (any event but
    ``settlement.ready``) to a terminated partner; ``erased``: naming an erased member (or a duplicate merged
    into it), but the ``member.erased`` itself; ``unlinked``: naming a member not linked to the partner now,
    but the ``member.unlinked`` itself; ``relinked``: a ``member.unlinked`` while the member is linked to the
    partner again. The ``points.expired`` of the erasure's own forfeit (written in its transaction, beside
    the ``member.erased``) goes when first sent, never again (``replaying``). A few queries for the whole
    set, whatever its size."""
    rows = [row for row in rows if row.event_type not in SETTLEMENT_EVENTS]
    partners = {row.partner_id for row in rows}
    terminated = set(tx.session.execute(select(terminations_t.c.partner_id).where(
        terminations_t.c.partner_id.in_(partners))).scalars()) if partners else set()
    named = {row.id: named_member(row.body) for row in rows if row.partner_id not in terminated}
    members: dict[str, object] = {}
    todo = {m for m in named.values() if m is not None}
    for _ in range(100):  # a duplicate's survivor, and so on: its points and links are there now
        todo -= members.keys()
        if not todo:
            break
        found = tx.session.execute(select(members_t.c.id, members_t.c.status, members_t.c.merged_into)
                                   .where(members_t.c.id.in_(todo))).all()
        members.update((member.id, member) for member in found)
        todo = {member.merged_into for member in found if member.merged_into is not None}

    def survivor(member_id: str) -> str:
        for _ in range(100):
            member = members.get(member_id)
            if member is None or member.merged_into is None:
                break
            member_id = member.merged_into
        return member_id

    survivors = {delivery: survivor(m) for delivery, m in named.items() if m is not None}
    links = {(link.partner_id, link.member_id) for link in tx.session.execute(
        select(links_t.c.partner_id, links_t.c.member_id).where(
            links_t.c.member_id.in_(set(survivors.values())), links_t.c.partner_id.in_(partners)))} \
        if survivors else set()
    erased = {m for m in survivors.values() if m in members and members[m].status == "erased"}
    forfeits = set() if replaying or not erased else set(tx.session.execute(select(erasures_t.c.entry_id).where(
        erasures_t.c.member_id.in_(erased), erasures_t.c.entry_id.is_not(None))).scalars())
    refused: dict[str, tuple[str, str | None]] = {}
    for row in rows:
        if row.partner_id in terminated:
            refused[row.id] = ("terminated", None)
            continue
        member_id = survivors.get(row.id)
        if member_id is None:
            continue
        if member_id in erased and row.event_type != "member.erased" and not (
                row.event_type == "points.expired" and body_data(row.body).get("transaction_id") in forfeits):
            refused[row.id] = ("erased", member_id)
            continue
        linked = (row.partner_id, member_id) in links
        if row.event_type == "member.unlinked":
            if linked:
                refused[row.id] = ("relinked", member_id)
        elif not linked:
            refused[row.id] = ("unlinked", member_id)
    return refused


def cancel_refused(tx: Tx, delivery_ids: list[str]) -> set[str]:
    """Cancel, instead of sending, those of these pending deliveries their partner may no longer hear
    (``refusals``); answers their ids. One set of queries for the batch."""
    if not delivery_ids:
        return set()
    rows = tx.session.execute(select(*_REACH_COLUMNS).where(deliveries_t.c.id.in_(delivery_ids))).all()
    refused = refusals(tx, rows, replaying=False)
    for why in sorted({why for why, _ in refused.values()}):
        cancel_deliveries(tx, [d for d, (w, _) in refused.items() if w == why], REFUSED[why])
    return set(refused)


def audit_replay(tx: Tx, actor, partner_id: str, delivery_id: str, queued: dict) -> None:
    """The audit entry of a replay ``queue_replay`` queued, by a dashboard session or the command line (None)."""
    from shared.access import audit

    audit.record(tx, actor, "webhook.replayed", partner_id, delivery_id=delivery_id,
                 previous_status=queued["previous_status"])


def replay(network, delivery_id: str, *, audited: bool = False) -> dict:
    """Queue the replay and make its first attempt at once; answers the delivery as it then stands.
    ``audited``: the replay is audited (``webhook.replayed``, by the command line) in the unit that queues
    it, as the dashboard audits its own."""
    def unit(tx):
        queued = queue_replay(tx, delivery_id)
        if audited:
            audit_replay(tx, None, delivery_detail(tx, delivery_id)["partner_id"], delivery_id, queued)
        return queued

    queued = network.tx(unit)
    deliver_due(network, rounds=1, delivery_ids=[delivery_id])
    return network.tx(lambda tx: delivery_detail(tx, delivery_id), readonly=True) | {
        "previous_status": queued["previous_status"]}


def counts_by_status(tx: Tx, partner_id: str | None = None) -> dict[str, int]:
    query = select(deliveries_t.c.status, func.count()).group_by(deliveries_t.c.status)
    if partner_id:
        query = query.where(deliveries_t.c.partner_id == partner_id)
    return {status: count for status, count in tx.session.execute(query)}


def prunable(tx: Tx, limit: int) -> list[str]:
    """Up to ``limit`` deliveries delivered more than ``RETENTION`` ago, or cancelled and queued more than
    ``RETENTION`` ago (never sent, never replayed: kept that long for the operators to see why), locked
    (PostgreSQL; one being replayed right now is skipped, and a replay after this waits, then finds it gone)."""
    before = tx.now - RETENTION
    delivered = select(deliveries_t.c.id).where(deliveries_t.c.status == "delivered",
                                                deliveries_t.c.delivered_at < before) \
        .order_by(deliveries_t.c.delivered_at).limit(limit).with_for_update(skip_locked=True)
    ids = list(tx.session.execute(delivered).scalars())
    if len(ids) < limit:
        cancelled = select(deliveries_t.c.id).where(deliveries_t.c.status == "cancelled",
                                                    deliveries_t.c.created_at < before) \
            .order_by(deliveries_t.c.created_at).limit(limit - len(ids)).with_for_update(skip_locked=True)
        ids += tx.session.execute(cancelled).scalars()
    return ids


def prune_delivered(tx: Tx, limit: int = 5000) -> int:
    """Forget up to ``limit`` deliveries delivered, or cancelled, more than ``RETENTION`` ago (dead letters
    stay)."""
    ids = prunable(tx, limit)
    if ids:
        tx.session.execute(delete(attempts_t).where(attempts_t.c.delivery_id.in_(ids)))
        tx.session.execute(delete(deliveries_t).where(deliveries_t.c.id.in_(ids)))
    return len(ids)
