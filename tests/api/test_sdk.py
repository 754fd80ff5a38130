"""The partner SDK and `pointsnet partner-call`: signed calls, safe retries, verified answers."""

import json
import re
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from shared.models import Entry
from shared.partners.keys import add_key
from shared.sdk import PointsnetAPIError, PointsnetClient, ResponseSignatureError
from services.partner_api.app import create_app
from shared.signing import private_key_pem, public_key_from_jwk, public_key_pem
from tests.cli.inprocess import pointsnet
from tests.factories import make_member, make_partner
from tests.quick_server import QuickServer


@pytest.fixture
def client(network, api):
    partner = make_partner(network)
    key = Ed25519PrivateKey.generate()
    key_id = network.tx(lambda tx: add_key(tx, partner, public_key_pem(key.public_key()).decode()))["key_id"]
    sdk = PointsnetClient(api, key_id, key)
    sdk.key, sdk.partner_id = key, partner
    yield sdk
    sdk.close()


def test_the_sdk_round_trip(client):
    member = client.enrol(phone="+8613812345678", customer_ref="C-1")["member_id"]
    earned = client.earn(member, "o-1", amount=12800)
    assert earned["points"] == 128 and earned["transaction_id"].startswith("ent_")
    assert client.quote(member, "o-2", amount=12800)["points"] == 128
    hold = client.hold(member, "h-1", 28)
    assert client.capture(hold["hold_id"], 20, reference="c-1")["balance"] == {"available": 108, "held": 0}
    assert client.reverse("r-1", "c-1", 5)["balance"]["available"] == 113
    with pytest.raises(PointsnetAPIError) as refusal:
        client.burn(member, "b-1", 10_000)
    assert refusal.value.code == "insufficient_points" and refusal.value.status == 409
    assert len(client.transactions()["transactions"]) == 4
    assert client.unlink(member) == {"member_id": member, "linked": False}  # the member withdraws its consent
    with pytest.raises(PointsnetAPIError) as gone:
        client.member(member)
    assert gone.value.code == "unknown_member" and gone.value.status == 404


def test_the_documented_quick_start_runs(network, api, tmp_path, monkeypatch):
    """docs/partner-integration.md 7, "Quick start", run as written (only the address, key id and key file
    are this network's). Found by review: it burned 500 of the 128 points its earn gives at the default
    contract (1 point per CNY unit), so a partner's first run raised 409 insufficient_points."""
    guide = (Path(__file__).resolve().parents[2] / "docs/partner-integration.md").read_text()
    snippet = re.search(r"### Python \(the SDK\)\n\n```python\n(.*?)```", guide, re.S).group(1)
    partner = make_partner(network)
    key = Ed25519PrivateKey.generate()
    key_id = network.tx(lambda tx: add_key(tx, partner, public_key_pem(key.public_key()).decode()))["key_id"]
    (tmp_path / "my-shop.pem").write_bytes(private_key_pem(key))
    monkeypatch.chdir(tmp_path)
    assert '"https://points.example.com", "key_…"' in snippet, snippet
    code = snippet.replace('"https://points.example.com", "key_…"', f"{api!r}, {key_id!r}")
    scope: dict = {}
    try:
        exec(compile(code, "partner-integration.md", "exec"), scope)  # noqa: S102 - the guide's own code
    finally:
        if "client" in scope:
            scope["client"].close()
    assert network.balance(scope["member"]["member_id"])["available"] > 0


def test_a_retry_reuses_the_idempotency_key(client, network):
    member = client.enrol(phone="+8613812345678")["member_id"]
    first = client.call("POST", "/v1/earn", {"member_id": member, "reference": "x", "points": 7}, idempotency_key="K")
    again = client.call("POST", "/v1/earn", {"member_id": member, "reference": "x", "points": 7}, idempotency_key="K")
    assert again.replayed and again.body == first.body
    assert network.balance(member)["available"] == 7


def test_an_answer_not_signed_by_the_network_is_rejected(client):
    impostor = Ed25519PrivateKey.generate()
    client.network_keys = {"network-fake": impostor.public_key()}
    with pytest.raises(ResponseSignatureError):
        client.call("GET", "/v1/transactions")


def test_transport_errors_are_retried_then_raised(network):
    calls = []

    def refuse(request):
        calls.append(request.headers["idempotency-key"])
        raise httpx.ConnectError("down", request=request)

    sdk = PointsnetClient("http://127.0.0.1:9", "key_x", Ed25519PrivateKey.generate(), retries=2,
                          transport=httpx.MockTransport(refuse), verify_responses=False)
    with pytest.raises(httpx.ConnectError):
        sdk.call("POST", "/v1/earn", {"member_id": "m", "reference": "r", "points": 1})
    assert len(calls) == 3 and len(set(calls)) == 1  # the same key on every attempt


def test_partner_call_from_the_command_line(client, api, tmp_path):
    member = client.enrol(phone="+8613812345678")["member_id"]
    key_file = tmp_path / "shop.pem"
    key_file.write_bytes(private_key_pem(client.key))
    run = pointsnet("partner-call", "POST", "/v1/earn", "--json",
                    json.dumps({"member_id": member, "reference": "cli-1", "points": 9}),
                    "--key-file", str(key_file), "--key-id", client.key_id, "--url", api)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["balance"]["available"] == 9
    refused = pointsnet("partner-call", "POST", "/v1/burn", "--json",
                        json.dumps({"member_id": member, "reference": "cli-2", "points": 90}),
                        "--key-file", str(key_file), "--key-id", client.key_id, "--url", api)
    assert refused.returncode == 2 and json.loads(refused.stdout)["code"] == "insufficient_points"


def test_a_proxys_unsigned_502_is_retried_with_the_same_key_and_never_trusted(network, api):
    partner = make_partner(network)
    key = Ed25519PrivateKey.generate()
    key_id = network.tx(lambda tx: add_key(tx, partner, public_key_pem(key.public_key()).decode()))["key_id"]
    real = httpx.HTTPTransport()
    seen = []

    def flaky_gateway(request):
        if request.method == "POST":  # (a new client fetches the network's keys first, with a GET)
            seen.append(request.headers.get("idempotency-key"))
            if len(seen) <= 2:  # the load balancer's own error page
                return httpx.Response(502, text="<html>502 Bad Gateway</html>")
        return real.handle_request(request)

    sdk = PointsnetClient(api, key_id, key, transport=httpx.MockTransport(flaky_gateway))
    member = sdk.enrol(phone="+8613812340001")["member_id"]  # first POST: two 502s, then through
    assert len(set(seen[:3])) == 1 and len(seen) >= 3
    forged = PointsnetClient(api, key_id, key, retries=1, transport=httpx.MockTransport(
        lambda request: httpx.Response(502, json={"transaction_id": "ent_forged"})))
    with pytest.raises(PointsnetAPIError) as gave_up:
        forged.earn(member, "e-1", points=5)
    assert gave_up.value.status == 502 and gave_up.value.problem == {}  # the unsigned body is ignored
    sdk.close()
    forged.close()


def test_a_threads_clients_share_one_tls_context_that_verifies_certificates(monkeypatch):
    import ssl
    import threading

    from shared import sdk

    made = []
    real = httpx.Client

    def spy(**kwargs):
        made.append(kwargs["verify"])
        return real(**kwargs)

    monkeypatch.setattr(sdk.httpx, "Client", spy)
    key = Ed25519PrivateKey.generate()

    def three_clients():
        for one in [PointsnetClient("https://pointsnet.example", "key-1", key) for _ in range(3)]:
            one.close()
    three_clients()
    # one context per thread (making one loads the CA bundle each time), verifying as httpx's default
    assert len(made) == 3 and made[0] is made[1] is made[2] and isinstance(made[0], ssl.SSLContext)
    other = threading.Thread(target=three_clients)
    other.start()
    other.join()
    assert len(made) == 6 and made[3] is made[4] is made[5] and made[3] is not made[0]
    assert made[0].verify_mode == ssl.CERT_REQUIRED and made[0].check_hostname
    default = httpx.create_ssl_context()
    assert (made[0].verify_mode, made[0].check_hostname, made[0].minimum_version, made[0].options) == \
        (default.verify_mode, default.check_hostname, default.minimum_version, default.options)
    assert len(made[0].get_ca_certs()) == len(default.get_ca_certs()) > 0


def _mock_client(handler):
    return PointsnetClient("https://points.example.com", "key_x", Ed25519PrivateKey.generate(),
                           verify_responses=False, transport=httpx.MockTransport(handler))


def _rate_limited(seconds: str):
    return httpx.Response(429, headers={"retry-after": seconds, "content-type": "application/problem+json"},
                          content=json.dumps({"code": "rate_limited", "status": 429}).encode())


def test_a_429_is_retried_no_sooner_than_retry_after_with_the_same_key(monkeypatch):
    import shared.sdk as sdk
    slept, keys = [], []

    def handler(request):
        keys.append(request.headers.get("idempotency-key"))
        return _rate_limited("10") if len(keys) == 1 else httpx.Response(200, json={"ok": True})

    monkeypatch.setattr(sdk.time, "sleep", slept.append)
    monkeypatch.setattr(sdk.secrets, "randbelow", lambda n: 0)  # the low end of the jitter
    _mock_client(handler).call("POST", "/v1/earn", {"member_id": "m", "reference": "r", "points": 1})
    assert len(keys) == 2 and len(set(keys)) == 1
    assert slept == [10.0]


def test_a_retry_after_beyond_five_minutes_is_the_error_not_a_wait(monkeypatch):
    import shared.sdk as sdk
    slept = []
    monkeypatch.setattr(sdk.time, "sleep", slept.append)
    with pytest.raises(PointsnetAPIError) as refused:
        _mock_client(lambda request: _rate_limited("86400")).call("GET", "/v1/members/m")
    assert refused.value.status == 429 and slept == []


def _gateway_to(api: str, fail_key_fetches: int, failure):
    """A transport to the real API whose first ``fail_key_fetches`` GETs of /v1/network/keys meet
    ``failure`` (the load balancer's 503 page, or a dropped connection)."""
    real, fetches, sent = httpx.HTTPTransport(), [], []

    def gateway(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/network/keys":
            fetches.append(request)
            if len(fetches) <= fail_key_fetches:
                return failure(request)
        else:
            sent.append(request)
        return real.handle_request(request)

    return httpx.MockTransport(gateway), fetches, sent


def _balance_and_burns(network, member):
    burns = network.tx(lambda tx: tx.session.execute(select(func.count()).select_from(Entry).where(
        Entry.member_id == member, Entry.kind == "burn")).scalar_one(), readonly=True)
    return network.balance(member)["available"], burns


@pytest.mark.parametrize("failure", [
    lambda request: httpx.Response(503, text="<html>503 Service Unavailable</html>"),
    lambda request: (_ for _ in ()).throw(httpx.ConnectError("reset", request=request))])
def test_a_new_clients_key_fetch_is_retried_like_a_call_and_the_burn_answered_once(network, api, failure):
    """Found by review: a new client's first call sent its POST, then fetched the network's keys to verify
    the answer; a passing 503 on that fetch was raised as a raw httpx.HTTPStatusError (not retried, not
    a PointsnetAPIError) although the burn was posted. The fetch is retried as any call is."""
    partner = make_partner(network)
    key = Ed25519PrivateKey.generate()
    key_id = network.tx(lambda tx: add_key(tx, partner, public_key_pem(key.public_key()).decode()))["key_id"]
    member = make_member(network, partner)
    network.earn(partner, member, "seed", points=100)
    transport, fetches, sent = _gateway_to(api, 2, failure)
    sdk = PointsnetClient(api, key_id, key, transport=transport)
    try:
        answer = sdk.burn(member, "till-1", 30)
    finally:
        sdk.close()
    assert answer["balance"] == {"available": 70, "held": 0}
    assert len(fetches) == 3 and len(sent) == 1  # the keys once they came; the burn sent once
    assert _balance_and_burns(network, member) == (70, 1)


def test_keys_that_cannot_be_fetched_are_an_sdk_error_and_nothing_is_spent(network, api):
    """Keys still unreachable after the retries: the call answers a PointsnetAPIError with the fetch's
    status (never a raw httpx error), before the burn is sent, so nothing is spent that the till was
    told failed."""
    partner = make_partner(network)
    key = Ed25519PrivateKey.generate()
    key_id = network.tx(lambda tx: add_key(tx, partner, public_key_pem(key.public_key()).decode()))["key_id"]
    member = make_member(network, partner)
    network.earn(partner, member, "seed", points=100)
    transport, fetches, sent = _gateway_to(api, 99, lambda request: httpx.Response(503, text="<html>503</html>"))
    sdk = PointsnetClient(api, key_id, key, retries=2, transport=transport)
    try:
        with pytest.raises(PointsnetAPIError) as gave_up:
            sdk.burn(member, "till-2", 30)
    finally:
        sdk.close()
    assert gave_up.value.status == 503 and gave_up.value.problem == {}
    assert len(fetches) == 3 and sent == []
    assert _balance_and_burns(network, member) == (100, 0)


def _network_clock_ahead(monkeypatch, seconds: int) -> None:
    """The network's clock runs ``seconds`` ahead of this (the partner's) one: every answer's
    signature says so in its ``created``."""
    from datetime import datetime, timedelta, timezone

    from services.partner_api import middleware
    from shared.signing import signature_fields

    def signed_ahead(signer_, message, **options):
        return signature_fields(signer_, message, created=datetime.now(timezone.utc) + timedelta(seconds=seconds),
                                **options)

    monkeypatch.setattr(middleware, "signature_fields", signed_ahead)


def test_an_answer_from_a_network_whose_clock_is_ahead_within_the_allowance_is_taken(client, network, monkeypatch):
    """Found by review: the SDK verified answers with the signature library's default 5 s clock skew while the
    network takes requests within 300 s, so a partner whose clock was 6 s or more behind the network's had
    every answer refused as "not signed by the network", after the earn was posted."""
    member = client.enrol(phone="+8613812345670")["member_id"]
    _network_clock_ahead(monkeypatch, 30)
    assert client.earn(member, "ahead-1", points=7)["balance"]["available"] == 7
    _network_clock_ahead(monkeypatch, 290)
    assert client.member(member)["balance"]["available"] == 7


def test_an_answer_signed_beyond_the_allowance_is_still_refused(client, network, monkeypatch):
    from shared.signing import FRESHNESS_S

    member = client.enrol(phone="+8613812345671")["member_id"]
    _network_clock_ahead(monkeypatch, FRESHNESS_S + 30)
    with pytest.raises(ResponseSignatureError, match="future"):
        client.member(member)


def test_an_answer_older_than_twice_the_allowance_is_refused(client, network, monkeypatch):
    """Found by review: the SDK verified answers with the signature library's default max_age of a day, while
    the network signs an answer as it sends it; an answer captured up to a day earlier (bound to the request's
    signature, so mainly one signed by a retired key within its rollout) passed the freshness check. An answer
    is now at most 2 x FRESHNESS_S old by its ``created``: the network's clock behind ours by the allowance,
    and the allowance again."""
    member = client.enrol(phone="+8613812345672")["member_id"]
    _network_clock_ahead(monkeypatch, -11 * 60)
    with pytest.raises(ResponseSignatureError, match="age"):
        client.member(member)


def test_an_answer_from_a_network_whose_clock_is_behind_within_the_allowance_is_taken(client, network,
                                                                                      monkeypatch):
    member = client.enrol(phone="+8613812345673")["member_id"]
    _network_clock_ahead(monkeypatch, -4 * 60)
    assert client.earn(member, "behind-1", points=7)["balance"]["available"] == 7
    _network_clock_ahead(monkeypatch, -9 * 60)  # the allowance, and most of it again
    assert client.member(member)["balance"]["available"] == 7


@contextmanager
def _server_on_ipv6_loopback(app):
    """A real partner API server listening on ::1 only; the test is skipped on a machine without it."""
    import socket
    import threading
    import time

    import uvicorn

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")
    server = QuickServer(uvicorn.Config(app, host="::1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the API server did not start"
            time.sleep(0.02)
        yield f"http://[::1]:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_sdk_and_partner_call_reach_an_ipv6_literal_url(network, tmp_path):
    """Found by review: the SDK put the authority into the request URL as a netloc, which httpx refuses for
    an IPv6 literal (``Invalid port: ':1]:8483'``), so no call to ``http://[::1]:PORT`` was ever sent."""
    partner = make_partner(network)
    key = Ed25519PrivateKey.generate()
    key_id = network.tx(lambda tx: add_key(tx, partner, public_key_pem(key.public_key()).decode()))["key_id"]
    with _server_on_ipv6_loopback(create_app(network)) as url:
        sdk = PointsnetClient(url, key_id, key)
        try:
            assert sdk.authority == url.removeprefix("http://")  # "[::1]:PORT", as RFC 9421 derives it
            member = sdk.enrol(phone="+8613812345674")["member_id"]
            assert sdk.earn(member, "v6-1", points=9)["balance"]["available"] == 9
        finally:
            sdk.close()
        key_file = tmp_path / "shop.pem"
        key_file.write_bytes(private_key_pem(key))
        run = pointsnet("partner-call", "POST", "/v1/earn", "--json",
                        json.dumps({"member_id": member, "reference": "v6-2", "points": 4}),
                        "--key-file", str(key_file), "--key-id", key_id, "--url", url)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["balance"]["available"] == 13


def test_an_ipv6_authority_is_signed_as_rfc_9421_derives_it():
    """What the signature covers, on any machine: ``@authority`` is ``[::1]:8483``, the request's own."""
    from http_message_signatures import HTTPMessageVerifier, MappingKeyResolver, algorithms

    key, seen = Ed25519PrivateKey.generate(), []
    sdk = PointsnetClient("http://[::1]:8483", "key_v6", key, verify_responses=False,
                          transport=httpx.MockTransport(lambda request: seen.append(request) or httpx.Response(204)))
    try:
        sdk.call("GET", "/v1/transactions")
    finally:
        sdk.close()
    assert str(seen[0].url) == "http://[::1]:8483/v1/transactions"
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=MappingKeyResolver(
        public_keys={"key_v6": key.public_key()}, private_keys={}))
    [result] = verifier.verify(seen[0], expect_tag="pointsnet-v1")
    assert result.covered_components['"@authority"'] == "[::1]:8483"


def _network_with_a_new_signing_key(network, settings, tmp_path):
    """The same network (database, personal-data keys) after the operator replaced its signing key."""
    from cryptography.hazmat.primitives import serialization

    from shared.config import Settings
    from shared.network import Network

    key_file = tmp_path / "new-signing-key.pem"
    key_file.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    network.signing_key  # noqa: B018 - the keys exist in the data directory before they are shared
    return Network(Settings(data_dir=tmp_path / "data-new-key", signing_key_file=key_file,
                            pii_keys_file=settings.data_dir / "keys" / "pii-keys.json"),
                   database_url=network.db.url, clock=network.clock, pool_size=5)


@pytest.fixture
def key_change(network, settings, tmp_path, api):
    """A transport to the network's API that ``change()`` moves to the same network with a new signing key
    (the partner's address stays the same); ``fetches`` counts the GETs of /v1/network/keys."""
    from tests.api.conftest import Server

    real, fetches, target = httpx.HTTPTransport(), [], [httpx.URL(api)]
    renewed = _network_with_a_new_signing_key(network, settings, tmp_path)
    server = Server(create_app(renewed))

    def forward(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/network/keys":
            fetches.append(request)
        url = request.url.copy_with(host=target[0].host, port=target[0].port)
        return real.handle_request(httpx.Request(request.method, url, headers=request.headers,
                                                 content=request.content))

    def change() -> None:
        target[0] = httpx.URL(server.__enter__())

    yield httpx.MockTransport(forward), change, fetches
    if server.thread.is_alive():
        server.__exit__(None, None, None)
    renewed.close()


def _partner_client(network, api, **options):
    partner = make_partner(network)
    key = Ed25519PrivateKey.generate()
    key_id = network.tx(lambda tx: add_key(tx, partner, public_key_pem(key.public_key()).decode()))["key_id"]
    return PointsnetClient(api, key_id, key, **options)


def test_a_long_lived_client_follows_the_networks_new_signing_key(network, api, key_change):
    """Found by review: a client kept the keys it fetched once, so after the operator replaced the network's
    signing key every call was posted and then raised "Unable to resolve verification key" until restart."""
    transport, change, fetches = key_change
    sdk = _partner_client(network, api, transport=transport)
    try:
        member = sdk.enrol(phone="+8613812345672")["member_id"]
        assert len(fetches) == 1
        change()
        assert sdk.earn(member, "after-change", points=9)["balance"]["available"] == 9
        assert len(fetches) == 2  # fetched once more, for the answer signed by a key it did not know
        assert sdk.member(member)["balance"]["available"] == 9
        assert len(fetches) == 2
    finally:
        sdk.close()


def test_pinned_network_keys_stay_pinned_after_a_key_change(network, api, key_change):
    transport, change, fetches = key_change
    pinned = {key["kid"]: public_key_from_jwk(key) for key in httpx.get(api + "/v1/network/keys").json()["keys"]}
    sdk = _partner_client(network, api, transport=transport, network_keys=pinned)
    try:
        member = sdk.enrol(phone="+8613812345673")["member_id"]
        change()
        with pytest.raises(ResponseSignatureError, match="Unable to resolve verification key"):
            sdk.member(member)
        assert fetches == [] and sdk.network_keys == pinned
    finally:
        sdk.close()


def test_an_unknown_key_id_fetches_the_keys_at_most_once_in_a_while(monkeypatch):
    """Answers naming a key the network does not have (forged, or from an impostor) cannot make the client
    hammer /v1/network/keys: one fetch per answer at most, none sooner than KEY_REFETCH_INTERVAL_S after
    the last one an unknown key made."""
    import time

    import shared.sdk as sdk_module
    from shared.signing import jwk

    network_key, fetches, now = Ed25519PrivateKey.generate(), [], [1000.0]

    def forger(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/network/keys":
            fetches.append(now[0])
            return httpx.Response(200, json={"keys": [jwk(network_key.public_key(), "network-real")]})
        return httpx.Response(200, json={"transaction_id": "ent_forged"}, headers={
            "signature-input": f'pointsnet=("@status");created={int(time.time())};keyid="network-forged";'
                               f'alg="ed25519";tag="pointsnet-v1-response"',
            "signature": f"pointsnet=:{'A' * 86}==:"})

    monkeypatch.setattr(sdk_module.time, "monotonic", lambda: now[0])
    sdk = PointsnetClient("https://points.example.com", "key_x", Ed25519PrivateKey.generate(),
                          transport=httpx.MockTransport(forger))
    for _ in range(3):
        with pytest.raises(ResponseSignatureError, match="Unable to resolve verification key"):
            sdk.call("GET", "/v1/transactions")
    assert len(fetches) == 2  # before the first call, and once more for its answer's unknown key
    now[0] += sdk_module.KEY_REFETCH_INTERVAL_S - 1
    with pytest.raises(ResponseSignatureError):
        sdk.call("GET", "/v1/transactions")
    assert len(fetches) == 2
    now[0] += 1
    with pytest.raises(ResponseSignatureError):
        sdk.call("GET", "/v1/transactions")
    assert len(fetches) == 3 and set(sdk.network_keys) == {"network-real"}
    sdk.close()


@pytest.mark.parametrize("form, media", [("csv", "text/csv"), ("html", "text/html")])
def test_partner_call_prints_a_file_answer_as_it_came(client, api, tmp_path, form, media):
    """Found by review: `pointsnet partner-call` printed a CSV or HTML answer as one JSON-quoted string."""
    key_file = tmp_path / "shop.pem"
    key_file.write_bytes(private_key_pem(client.key))
    path = f"/v1/reports?from=2026-11-20&to=2026-11-20&format={form}"
    run = pointsnet("partner-call", "GET", path, "--key-file", str(key_file), "--key-id", client.key_id,
                    "--url", api)
    assert run.returncode == 0, run.stderr
    direct = client.call("GET", path)
    assert direct.headers["content-type"].startswith(media) and "\n" in direct.body
    assert run.stdout.encode() == direct.content  # the bytes as received: no quotes, no escaped newlines


def _keys_served_with_the_networks_key_retired(network, api, retired_at):
    """A transport to the network's API whose /v1/network/keys says the key the network signs with was
    retired at ``retired_at`` (another key current): what a partner sees after a rotation, from a host not
    restarted since, or from whoever holds the leaked key."""
    from shared.signing import jwk, network_key_id

    real = httpx.HTTPTransport()
    key = network.signing_key
    current = Ed25519PrivateKey.generate().public_key()

    def forward(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/network/keys":
            when = retired_at.isoformat(timespec="seconds").replace("+00:00", "Z")
            return httpx.Response(200, json={"keys": [
                jwk(current, "network-current"),
                jwk(key.public_key(), network_key_id(key)) | {"status": "retired", "retired_at": when}]})
        return real.handle_request(httpx.Request(request.method, request.url, headers=request.headers,
                                                 content=request.content))

    return httpx.MockTransport(forward)


def test_an_answer_signed_by_a_retired_key_is_taken_only_within_the_rollout(network, api):
    """Found by review: the SDK trusted a retired key without time limit, so after a rotation for a leaked key
    whoever held it could still answer a partner (a forged 'balance', a forged 'earned') with a fresh
    `created`. A retired key is trusted for an answer signed at most ROLLOUT after its retirement (the hosts
    not restarted yet still sign with it)."""
    from datetime import datetime, timedelta, timezone

    from shared.sdk import RETIRED_KEY_ROLLOUT

    now = datetime.now(timezone.utc).replace(microsecond=0)
    lately = _partner_client(network, api, transport=_keys_served_with_the_networks_key_retired(
        network, api, now - RETIRED_KEY_ROLLOUT + timedelta(hours=1)))
    long_ago = _partner_client(network, api, transport=_keys_served_with_the_networks_key_retired(
        network, api, now - RETIRED_KEY_ROLLOUT - timedelta(minutes=10)))
    try:
        assert lately.call("GET", "/v1/transactions").status == 200
        with pytest.raises(ResponseSignatureError, match="retired"):
            long_ago.call("GET", "/v1/transactions")
    finally:
        lately.close()
        long_ago.close()


def test_a_checkpoint_a_retired_key_signed_after_the_rollout_is_refused(network, api, clock):
    from datetime import timedelta

    from shared.sdk import ProofError, RETIRED_KEY_ROLLOUT

    make_partner(network)
    network.checkpoint()
    checkpoint = httpx.get(api + "/v1/checkpoints/latest").json()
    signed_at = clock.now().replace(microsecond=0)
    within = PointsnetClient(api, "key_x", Ed25519PrivateKey.generate(), verify_responses=False,
                             transport=_keys_served_with_the_networks_key_retired(
                                 network, api, signed_at - RETIRED_KEY_ROLLOUT))
    beyond = PointsnetClient(api, "key_x", Ed25519PrivateKey.generate(), verify_responses=False,
                             transport=_keys_served_with_the_networks_key_retired(
                                 network, api, signed_at - RETIRED_KEY_ROLLOUT - timedelta(seconds=1)))
    try:
        assert within.verify_checkpoint(checkpoint).tree_size == checkpoint["tree_size"]
        with pytest.raises(ProofError, match="retired"):
            beyond.verify_checkpoint(checkpoint)
    finally:
        within.close()
        beyond.close()


def _sdk_clock(monkeypatch, start: float = 1000.0) -> list[float]:
    """The SDK's monotonic clock, moved by the test (``now[0] += …``), and its sleeps skipped: only the SDK's,
    the API server in this process keeps the real one."""
    import time as real_time
    from types import SimpleNamespace

    import shared.sdk as sdk_module

    now = [start]
    monkeypatch.setattr(sdk_module, "time", SimpleNamespace(monotonic=lambda: now[0], sleep=lambda seconds: None,
                                                            time=real_time.time))
    return now


def test_a_long_lived_client_learns_that_a_key_it_holds_was_retired(network, api, database_url, monkeypatch):
    """Found by review: a client fetched the network's keys once and fetched them again only for an answer
    signed by a key it did not know, so it never learnt that a key it held was retired afterwards (`pointsnet
    keys rotate-signing` after a suspected leak), and believed answers that key signed at any time after its
    retirement: whoever held the leaked key, or a host never given the new one, answered it for ever. The keys
    held now have a maximum age; the first call after it fetches them again, once."""
    from datetime import datetime, timedelta, timezone

    from services.partner_api import routes
    from shared.signing import RETIRED_KEY_ROLLOUT

    now = _sdk_clock(monkeypatch)
    monkeypatch.setattr(routes, "KEYS_CACHE_S", 0.0)  # the server serves a rotation at once, not a minute later
    transport, fetches, sent = _gateway_to(api, 0, None)
    sdk = _partner_client(network, api, transport=transport)
    try:
        member = sdk.enrol(phone="+8613812345675")["member_id"]
        assert len(fetches) == 1
        # the operator retires the network's key, recorded as retired longer ago than the rollout allowance;
        # this server (not restarted: it has the key in memory) goes on signing with it
        retired_at = datetime.now(timezone.utc) - RETIRED_KEY_ROLLOUT - timedelta(minutes=10)
        rotated = pointsnet("keys", "rotate-signing", env={
            "POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
            "POINTSNET_CLOCK": retired_at.isoformat(timespec="seconds").replace("+00:00", "Z")})
        assert rotated.returncode == 0, (rotated.stdout, rotated.stderr)
        now[0] += 60  # the keys held, a minute old: still believed (the window the maximum age leaves)
        assert sdk.member(member)["balance"]["available"] == 0
        assert len(fetches) == 1
        now[0] += 10 * 60  # older than their maximum age: the next call fetches them again, and learns
        with pytest.raises(ResponseSignatureError, match="retired"):
            sdk.member(member)
        with pytest.raises(ResponseSignatureError, match="retired"):
            sdk.member(member)
        assert len(fetches) == 2  # once, not per request
    finally:
        sdk.close()


def test_a_refresh_that_fails_keeps_the_keys_held_until_the_stale_limit(network, api, monkeypatch):
    """The keys' maximum age is the keys answer's Cache-Control max-age when it has one. A refresh that fails
    (the network briefly unreachable) does not fail a good answer: the keys held are used, and the refresh
    tried again no sooner than KEY_REFETCH_INTERVAL_S later, until the keys are KEYS_STALE_LIMIT_S old;
    then the call fails before its request is sent, as a new client's does. Pinned keys are never fetched."""
    import shared.sdk as sdk_module

    now = _sdk_clock(monkeypatch)
    real, fetches, sent, failing = httpx.HTTPTransport(), [], [], [False]

    def gateway(request: httpx.Request) -> httpx.Response:
        if request.url.path != "/v1/network/keys":
            sent.append(request)
            return real.handle_request(request)
        fetches.append(now[0])
        if failing[0]:
            return httpx.Response(503, text="<html>503 Service Unavailable</html>")
        response = real.handle_request(request)
        response.headers["cache-control"] = "max-age=120"  # as a cache in front of the keys may say
        return response

    sdk = _partner_client(network, api, transport=httpx.MockTransport(gateway))
    pinned = None
    try:
        member = sdk.enrol(phone="+8613812345676")["member_id"]
        assert len(fetches) == 1
        pinned = _partner_client(network, api, transport=httpx.MockTransport(gateway),
                                 network_keys=dict(sdk.network_keys))
        now[0] += 100
        sdk.member(member)
        assert len(fetches) == 1
        now[0] += 30  # 130 s: older than the 120 s the keys' answer allowed
        sdk.member(member)
        assert len(fetches) == 2
        failing[0] = True
        now[0] += 130
        for _ in range(3):  # the refresh fails: the answers are taken with the keys held
            assert sdk.member(member)["balance"]["available"] == 0
        assert len(fetches) == 3  # one attempt, not one per call
        now[0] += sdk_module.KEY_REFETCH_INTERVAL_S
        sdk.member(member)
        assert len(fetches) == 4
        now[0] = fetches[1] + sdk_module.KEYS_STALE_LIMIT_S  # the keys held are as old as they may get
        calls = len(sent)
        with pytest.raises(PointsnetAPIError) as refused:
            sdk.member(member)
        assert refused.value.status == 503 and len(sent) == calls  # refused before the request was sent
        assert len(fetches) == 4 + sdk.retries + 1
        failing[0] = False
        assert sdk.member(member)["balance"]["available"] == 0
        assert len(fetches) == 4 + sdk.retries + 2
        assert pinned.call("GET", "/v1/transactions").status == 200 and len(fetches) == 4 + sdk.retries + 2
    finally:
        sdk.close()
        if pinned is not None:
            pinned.close()


def test_the_keys_maximum_age_is_the_endpoints_within_bounds():
    from shared.sdk import KEYS_MAX_AGE_BOUNDS_S, KEYS_MAX_AGE_S, _max_age

    low, high = KEYS_MAX_AGE_BOUNDS_S
    assert _max_age(httpx.Headers({})) == KEYS_MAX_AGE_S == 300
    assert _max_age(httpx.Headers({"cache-control": "no-store"})) == KEYS_MAX_AGE_S
    assert _max_age(httpx.Headers({"cache-control": "public, max-age=120"})) == 120
    assert _max_age(httpx.Headers({"cache-control": "max-age=0"})) == low  # never refetched on every call
    assert _max_age(httpx.Headers({"cache-control": "max-age=31536000"})) == high  # nor held for a year
    assert _max_age(httpx.Headers({"cache-control": "max-age=soon"})) == KEYS_MAX_AGE_S
