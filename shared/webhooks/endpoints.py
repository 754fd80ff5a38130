"""A partner's webhook endpoint: one URL, its signing secret, and secret rotation with overlap."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
from sqlalchemy import case, select, update

from shared.db.database import Tx
from shared.db.types import new_id
from shared.models import WebhookDelivery, WebhookEndpoint
from shared.partners.contracts import require_partner
from shared.webhooks.addresses import first_non_public, parse
from shared.webhooks.dialing import DeadlineExceeded, bounded_lookup
from shared.webhooks.errors import InvalidWebhookUrl, RotationOverlapRunning, UnknownWebhookEndpoint
from shared.webhooks.signing import new_secret

DEFAULT_OVERLAP = timedelta(hours=24)
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def private_address(hostname: str) -> str | None:
    """The first address ``hostname`` is or resolves to that is not a public unicast address (see
    shared/webhooks/addresses.py: IPv6 forms that carry an IPv4 address are judged by it too), if any.

    A name that does not resolve now (or not within ``RESOLVE_TIMEOUT``, or the delivery's time) is not
    judged here: delivery checks again when it connects."""
    try:
        addresses = [parse(hostname)]
    except ValueError:
        try:
            infos = bounded_lookup((hostname, None, "private_address"),
                                   lambda: socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP))
        except (socket.gaierror, UnicodeError, OSError, DeadlineExceeded):
            return None
        addresses = [parse(info[4][0]) for info in infos]
    found = first_non_public(addresses)
    return None if found is None else str(found)


def dial_host(url: str) -> str:
    """The host name httpx connects to for ``url``: an internationalised name in its IDNA 2008
    ASCII form (``straße`` -> ``xn--strae-oqa``), which is what must be resolved and judged —
    Python's ``idna`` codec (IDNA 2003: ``straße`` -> ``strasse``) would name another host."""
    try:
        return httpx.URL(url).raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise InvalidWebhookUrl(f"webhook URL host cannot be used: {exc}") from exc


def refuse_private_target(url: str) -> None:
    hostname = dial_host(url)
    found = private_address(hostname)
    if found is not None:
        raise InvalidWebhookUrl(f"webhook URL host {hostname} is a loopback, private, link-local or reserved "
                                f"address ({found}); an operator can allow such targets with "
                                f"POINTSNET_WEBHOOK_ALLOW_PRIVATE_TARGETS")


def check_url(url: str, *, allow_private: bool = False) -> str:
    """HTTPS only, except to this machine (local receivers, tests and the demo); no private targets
    unless the operator allows them."""
    try:  # what urlsplit cannot parse (``https://[::1``) is a refusal, never a bare ValueError
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise InvalidWebhookUrl(f"{url!r} is not a valid URL ({exc})") from exc
    try:
        port = parts.port  # None when the URL names none; raises when it is not a number or above 65535
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise InvalidWebhookUrl(f"{url!r}: the port must be a number from 1 to 65535")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidWebhookUrl(f"{url!r} is not an absolute http(s) URL")
    if any(c.isspace() or c == "%" or ord(c) < 32 for c in parts.hostname):
        # a name no resolver knows: httpx percent-encodes it, and every delivery would fail (until 2026-12-07
        # `https://exa mple.com/` was accepted)
        raise InvalidWebhookUrl(f"{url!r}: the host name holds a space, a control character or %")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise InvalidWebhookUrl("webhook URLs must use https (plain http is allowed only to localhost)")
    if parts.username or parts.password:
        raise InvalidWebhookUrl("webhook URLs must not carry credentials")
    if len(url) > 2000:
        raise InvalidWebhookUrl("webhook URLs are at most 2000 characters")
    dial_host(url.strip())  # a host httpx cannot encode is refused here, not at every delivery
    if not allow_private:
        refuse_private_target(url.strip())
    return url.strip()


def _view(endpoint: WebhookEndpoint, *, secret: bool = True) -> dict:
    view = {"endpoint_id": endpoint.id, "partner_id": endpoint.partner_id, "url": endpoint.url,
            "status": endpoint.status,
            "paused_until": endpoint.paused_until.isoformat() if endpoint.paused_until else None,
            "previous_secret_expires_at": (endpoint.previous_secret_expires_at.isoformat()
                                           if endpoint.previous_secret_expires_at else None)}
    if secret:
        view["secret"] = endpoint.secret
    return view


def _endpoint(tx: Tx, partner_id: str, *, lock: bool = False) -> WebhookEndpoint | None:
    query = select(WebhookEndpoint).where(WebhookEndpoint.partner_id == partner_id)
    if lock and tx.is_postgres:
        query = query.with_for_update()
    return tx.session.execute(query).scalar_one_or_none()


def set_endpoint(tx: Tx, partner_id: str, url: str) -> dict:
    """Register the partner's URL, or change it (its secret stays); answers the endpoint, with its
    secret only when this made it (a new endpoint): an existing secret is never shown again. A pause
    after a timeout ends: the URL set is taken to be one that answers."""
    require_partner(tx, partner_id)
    url = check_url(url, allow_private=tx.settings.webhook_allow_private_targets)
    endpoint = _endpoint(tx, partner_id, lock=True)
    created = endpoint is None
    if created:
        endpoint = WebhookEndpoint(id=new_id("whe"), partner_id=partner_id, url=url, secret=new_secret(),
                                   status="active", created_at=tx.now, updated_at=tx.now)
        tx.session.add(endpoint)
    else:
        if endpoint.status != "active":  # enabled again: what waited is due now, with a fresh retry window
            _due_again(tx, endpoint.id)
        endpoint.url, endpoint.status, endpoint.updated_at = url, "active", tx.now
        if endpoint.paused_until is not None:
            end_pause(tx, endpoint.id, endpoint.paused_until)
        endpoint.paused_until, endpoint.pauses = None, 0
    tx.session.flush()
    return _view(endpoint, secret=created)


def end_pause(tx: Tx, endpoint_id: str, paused_until: datetime) -> None:
    """The endpoint's pause after a timeout is over early (it took a delivery, or its URL was set):
    the deliveries put back to wait for the pause's end (``delivery._put_back``) are due now. A
    delivery whose try failed keeps the next try its schedule gave it."""
    deliveries = WebhookDelivery.__table__
    tx.session.execute(update(deliveries).where(
        deliveries.c.endpoint_id == endpoint_id, deliveries.c.status == "pending", deliveries.c.claim_token.is_(None),
        deliveries.c.next_attempt_at == paused_until, deliveries.c.next_attempt_at > tx.now)
        .values(next_attempt_at=tx.now))


def _due_again(tx: Tx, endpoint_id: str) -> None:
    """The endpoint's pending messages are due at once and start the schedule afresh, as a replay does:
    attempts from one again (a failure next waits 5 s, not the 10 h step they had reached) within a
    fresh retry window. One still leased to a worker keeps its lease and its count (no second send
    while the first is in flight) and gets its next try from the fresh window when that one is
    recorded. Every earlier attempt stays in the attempt log."""
    deliveries = WebhookDelivery.__table__
    idle = deliveries.c.claim_token.is_(None)
    tx.session.execute(update(deliveries).where(
        deliveries.c.endpoint_id == endpoint_id, deliveries.c.status == "pending").values(
        retry_from=tx.now,
        attempts=case((idle, 0), else_=deliveries.c.attempts),
        next_attempt_at=case((idle, tx.now), else_=deliveries.c.next_attempt_at)))


def rotate_secret(tx: Tx, partner_id: str, overlap: timedelta = DEFAULT_OVERLAP) -> dict:
    """A new secret signs from now on; the current one keeps signing too until the overlap ends.

    One previous secret is kept, so a rotation while an overlap is running is refused
    (``RotationOverlapRunning``): it would cut off the older secret the partner was promised until
    then. With no overlap it is done (a leaked secret): every older secret stops signing at once."""
    endpoint = _endpoint(tx, partner_id, lock=True)
    if endpoint is None:
        raise UnknownWebhookEndpoint(f"partner {partner_id} has no webhook endpoint; set one first")
    running = secrets_in_force(endpoint.secret, endpoint.previous_secret, endpoint.previous_secret_expires_at, tx.now)
    if overlap > timedelta(0) and len(running) > 1:
        ends = endpoint.previous_secret_expires_at.isoformat()
        raise RotationOverlapRunning(
            f"partner {partner_id}'s previous webhook secret still signs until {ends} (the last rotation's "
            f"overlap): rotate again after that, or with an overlap of 0 to end every older secret now",
            overlap_ends_at=ends)
    endpoint.previous_secret, endpoint.secret = endpoint.secret, new_secret()
    endpoint.previous_secret_expires_at = tx.now + overlap
    endpoint.updated_at = tx.now
    tx.session.flush()
    return _view(endpoint)


def disable_endpoint(tx: Tx, partner_id: str) -> dict:
    """Stop queuing events for the partner; what is pending waits until ``set_endpoint`` enables it again."""
    endpoint = _endpoint(tx, partner_id, lock=True)
    if endpoint is None:
        raise UnknownWebhookEndpoint(f"partner {partner_id} has no webhook endpoint")
    endpoint.status, endpoint.updated_at = "disabled", tx.now
    tx.session.flush()
    return _view(endpoint, secret=False)


def show_endpoint(tx: Tx, partner_id: str, *, secret: bool = False) -> dict:
    """The endpoint; with ``secret``, its current secret too (the command line's ``show --secret``, for an
    answer to ``set``/``rotate-secret`` that never reached the partner: a rotation is refused while an
    overlap runs, so the new secret could otherwise be given to no one)."""
    endpoint = _endpoint(tx, partner_id)
    if endpoint is None:
        raise UnknownWebhookEndpoint(f"partner {partner_id} has no webhook endpoint")
    return _view(endpoint, secret=secret)


def secrets_in_force(secret: str, previous: str | None, previous_expires_at: datetime | None,
                     now: datetime) -> list[str]:
    """The secrets that sign a message sent now: the current one, and the previous during its overlap."""
    if previous and previous_expires_at is not None and now < previous_expires_at:
        return [secret, previous]
    return [secret]


def audit_change(tx: Tx, actor, verb: str, partner_id: str, view: dict) -> None:
    """The audit entry of an endpoint change (``webhook.<verb>``), by a dashboard session or the command line
    (``actor`` None): its URL and status, never the secret."""
    from shared.access import audit

    audit.record(tx, actor, f"webhook.{verb}", partner_id, url=view.get("url"), status=view.get("status"))
