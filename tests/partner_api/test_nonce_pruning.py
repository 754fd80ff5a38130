"""Nonces are kept until every request they guard has expired by any clock within the documented skew.

Found by review: the job runner pruned the nonces seen more than 2 x 300 s ago by its own clock,
while ``seen_at`` is the API host's. A request signed with ``created`` ahead of the API's clock is
accepted until that API's clock passes ``created`` + 300 s, up to 600 s after it was seen; a worker
whose clock ran 60 s fast deleted its nonce before then, and the replay was accepted."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from services.partner_api import errors
from services.partner_api.auth import SignedRequest, authenticate
from shared.partners.keys import prune_nonces, remember_nonce
from shared.signing import FRESHNESS_S
from tests.partner_api.conftest import Partner

SKEW_S = 300  # the clock skew docs/operations.md allows between the network's hosts


def as_seen(request: httpx.Request) -> SignedRequest:
    """The request as the API's door reads it."""
    return SignedRequest(request.method, str(request.url), request.headers, request.url.path)


def test_a_replay_inside_its_window_is_refused_after_a_fast_worker_pruned(network):
    partner = Partner(network, "http://points.example.com")
    try:
        seen = datetime.now(timezone.utc)  # the API host's clock when the request first arrives
        request = partner.build("GET", "/v1/transactions", created=seen + timedelta(seconds=250))
        authenticate(network, as_seen(request), b"", seen)
        # the API accepts the same signature until its clock passes created + 300 s: seen + 550 s.
        # At true time seen + 545 s, a worker whose clock runs 60 s fast prunes the nonces.
        network.tx(lambda tx: prune_nonces(tx, seen + timedelta(seconds=545 + 60)))
        with pytest.raises(errors.NonceReused):
            authenticate(network, as_seen(request), b"", seen + timedelta(seconds=545))
    finally:
        partner.close()


def test_a_nonce_is_pruned_once_its_window_and_the_allowed_skew_have_passed(network, shop):
    seen = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)
    assert network.tx(lambda tx: remember_nonce(tx, shop.key_id, "n-1", seen))
    kept_until = seen + timedelta(seconds=2 * FRESHNESS_S + SKEW_S)
    assert network.tx(lambda tx: prune_nonces(tx, kept_until)) == 0
    assert not network.tx(lambda tx: remember_nonce(tx, shop.key_id, "n-1", seen))  # still known
    assert network.tx(lambda tx: prune_nonces(tx, kept_until + timedelta(seconds=1))) == 1
    assert network.tx(lambda tx: remember_nonce(tx, shop.key_id, "n-1", seen))  # forgotten
