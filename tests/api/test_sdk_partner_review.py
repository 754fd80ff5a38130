"""The partner SDK as a partner developer's review found it wanting: a proxy's unsigned 413, an
Idempotency-Key on every write, a request still posting after the client's timeout, the client as a
context manager, and the read helpers the guide's endpoints call for."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

import services.partner_api.routes as routes
import shared.sdk as sdk_module
from shared.models import Entry
from shared.partners.keys import add_key
from shared.sdk import (
    MAX_BODY_BYTES, BodyTooLargeError, PointsnetAPIError, PointsnetClient, StatementDigestError,
)
from shared.signing import private_key_pem, public_key_pem
from tests.cli.inprocess import pointsnet
from tests.factories import make_partner
from tests.partner_api.conftest import Partner
from tests.partner_api.test_statements import settled_days

NGINX_413 = ("<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 Request "
             "Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")


def _key(network):
    partner = make_partner(network)
    key = Ed25519PrivateKey.generate()
    key_id = network.tx(lambda tx: add_key(tx, partner, public_key_pem(key.public_key()).decode()))["key_id"]
    return partner, key_id, key


def _entries(network, reference: str) -> int:
    return network.tx(lambda tx: tx.session.execute(select(func.count()).select_from(Entry).where(
        Entry.reference == reference)).scalar_one(), readonly=True)


# -- 1. a proxy's unsigned 413 --------------------------------------------------------------------------

@pytest.mark.parametrize("page", [
    httpx.Response(413, text=NGINX_413, headers={"content-type": "text/html"}),
    # an unsigned body that claims to be the network's: nothing in it is believed
    httpx.Response(413, json={"code": "insufficient_points", "transaction_id": "ent_forged"},
                   headers={"content-type": "application/problem+json"})])
def test_a_proxys_unsigned_413_is_body_too_large_never_retried_nor_called_forged(network, api, page):
    """Found by review: nginx's own 413 page (client_max_body_size 9m) was raised as a
    ResponseSignatureError, which the guide says is a forged or replayed answer."""
    _, key_id, key = _key(network)
    real, posts = httpx.HTTPTransport(), []

    def nginx(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts.append(request.headers["idempotency-key"])
            return page
        return real.handle_request(request)  # the network's keys, fetched before the first call

    with PointsnetClient(api, key_id, key, transport=httpx.MockTransport(nginx)) as client:
        with pytest.raises(PointsnetAPIError) as refused:
            client.batch([{"type": "earn", "member_id": "mem_x", "reference": "b-1", "points": 1}])
    assert refused.value.status == 413 and refused.value.code == "body_too_large"
    assert "transaction_id" not in refused.value.problem and "split" in refused.value.problem["detail"]
    assert len(posts) == 1  # never retried


def test_partner_call_reports_a_proxys_413_as_body_too_large(network, api, tmp_path, monkeypatch):
    _, key_id, key = _key(network)
    (tmp_path / "shop.pem").write_bytes(private_key_pem(key))
    send = httpx.HTTPTransport.handle_request

    def nginx(transport, request):
        if request.method == "POST":
            return httpx.Response(413, text=NGINX_413, headers={"content-type": "text/html"})
        return send(transport, request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", nginx)
    run = pointsnet("partner-call", "POST", "/v1/batch", "--json", json.dumps({"events": []}),
                    "--key-file", str(tmp_path / "shop.pem"), "--key-id", key_id, "--url", api)
    assert run.returncode == 2, run.stderr
    assert json.loads(run.stdout)["code"] == "body_too_large" and "not signed" not in run.stderr


def test_a_batch_over_the_body_limit_is_refused_before_it_is_sent():
    sent = []
    client = PointsnetClient("https://points.example.com", "key_x", Ed25519PrivateKey.generate(),
                             verify_responses=False, transport=httpx.MockTransport(
                                 lambda request: sent.append(request) or httpx.Response(200, json={})))
    events = [{"type": "earn", "member_id": "mem_0123456789", "reference": f"order-{i:06d}-" + "x" * 100,
               "points": 1} for i in range(60_000)]
    assert len(json.dumps({"events": events}, separators=(",", ":"))) > MAX_BODY_BYTES
    with client, pytest.raises(BodyTooLargeError) as refused:
        client.batch(events)
    assert "8,388,608" in str(refused.value) and "split" in str(refused.value)
    assert isinstance(refused.value, ValueError) and sent == []


# -- 2. an Idempotency-Key on every write -----------------------------------------------------------------

def test_every_write_method_takes_an_idempotency_key(network, api):
    """Found by review: ``client.earn(m, "o-1", points=5, idempotency_key="K-1")`` sent the key in the body
    (422), and enrol, hold, capture, void and reverse took none."""
    _, key_id, key = _key(network)
    with PointsnetClient(api, key_id, key) as client:
        def twice(method, *args, **fields):
            first = method(*args, idempotency_key=f"K-{method.__name__}", **fields)
            assert method(*args, idempotency_key=f"K-{method.__name__}", **fields) == first
            return first

        member = twice(client.enrol, phone="+8613812340077")["member_id"]
        assert twice(client.earn, member, "o-1", points=50)["balance"]["available"] == 50
        assert twice(client.quote, member, "o-2", points=5)["points"] == 5
        assert twice(client.burn, member, "b-1", 5)["balance"]["available"] == 45
        hold = twice(client.hold, member, "h-1", 10)
        assert twice(client.capture, hold["hold_id"], 4, reference="c-1")["balance"]["available"] == 41
        voided = twice(client.void, client.hold(member, "h-2", 3)["hold_id"], reference="v-1")
        assert voided["balance"] == {"available": 41, "held": 0}
        assert twice(client.reverse, "r-1", "o-1", 10)["balance"]["available"] == 31
        assert twice(client.link_token, member)["link_token"]
        assert client.member(member)["balance"]["available"] == 31
    assert _entries(network, "o-1") == 1 and _entries(network, "r-1") == 1


# -- 3. a request still posting when the client's timeout ran out ---------------------------------------

@pytest.mark.postgres
def test_a_request_still_posting_after_the_clients_timeout_is_waited_for(network, api, monkeypatch):
    """Found by review: on PostgreSQL the retry of a request whose answer the client lost (its timeout)
    meets 409 request_in_progress while the first still posts; the SDK spent its retries on those in a
    few seconds and raised the 409. The network now says Retry-After: 1, and the SDK keeps asking."""
    partner, key_id, key = _key(network)
    post = routes.post_events

    def slow(tx, partner_id, events, *args, **kwargs):
        if any(getattr(event, "reference", None) == "slow-1" for event in events):
            import time
            time.sleep(2)
        return post(tx, partner_id, events, *args, **kwargs)

    monkeypatch.setattr(routes, "post_events", slow)
    real, seen = httpx.HTTPTransport(), []

    def recorded(request: httpx.Request) -> httpx.Response:
        try:
            response = real.handle_request(request)
        except httpx.TimeoutException:
            seen.append("timeout")
            raise
        if request.method == "POST":
            response.read()
            seen.append((response.status_code, response.headers.get("retry-after")))
        return response

    with PointsnetClient(api, key_id, key, timeout=0.5, retries=1, transport=httpx.MockTransport(recorded)) as client:
        member = client.enrol(phone="+8613812340088")["member_id"]
        seen.clear()
        earned = client.earn(member, "slow-1", points=5)
    assert earned["points"] == 5 and earned["balance"]["available"] == 5
    assert seen[0] == "timeout" and (409, "1") in seen, seen  # the first lost, the twin told to come back in 1 s
    assert _entries(network, "slow-1") == 1


def test_request_in_progress_spends_the_retries_when_no_answer_was_lost(monkeypatch):
    """Without a lost answer (another process holds the key), request_in_progress is retried as before."""
    monkeypatch.setattr(sdk_module.time, "sleep", lambda seconds: None)
    asked = []

    def busy(request):
        asked.append(request)
        return httpx.Response(409, json={"code": "request_in_progress"}, headers={
            "content-type": "application/problem+json", "retry-after": "1"})

    client = PointsnetClient("https://points.example.com", "key_x", Ed25519PrivateKey.generate(), retries=2,
                             verify_responses=False, transport=httpx.MockTransport(busy))
    with client, pytest.raises(PointsnetAPIError) as refused:
        client.earn("mem_x", "o-1", points=1)
    assert refused.value.code == "request_in_progress" and len(asked) == 3


def test_after_a_lost_answer_request_in_progress_is_retried_until_the_wait_runs_out(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(sdk_module.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(sdk_module.time, "sleep", lambda seconds: now.__setitem__(0, now[0] + seconds))
    asked = []

    def first_lost(request):
        asked.append(request.headers["idempotency-key"])
        if len(asked) == 1:
            now[0] += 0.5
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(409, json={"code": "request_in_progress"}, headers={
            "content-type": "application/problem+json", "retry-after": "1"})

    client = PointsnetClient("https://points.example.com", "key_x", Ed25519PrivateKey.generate(), retries=2,
                             verify_responses=False, in_progress_wait=20, transport=httpx.MockTransport(first_lost))
    with client, pytest.raises(PointsnetAPIError) as refused:
        client.earn("mem_x", "o-1", points=1)
    assert refused.value.code == "request_in_progress"
    assert len(asked) > 5 and len(set(asked)) == 1  # far beyond the 2 retries, with the same key


# -- 4. a context manager ------------------------------------------------------------------------------

def test_the_client_is_a_context_manager_and_partner_call_closes_its_own(network, api, tmp_path, monkeypatch):
    _, key_id, key = _key(network)
    with PointsnetClient(api, key_id, key) as client:
        assert client.transactions()["transactions"] == []
    assert client.http.is_closed
    closed = []
    close = PointsnetClient.close
    monkeypatch.setattr(PointsnetClient, "close", lambda self: (closed.append(self), close(self)))
    (tmp_path / "shop.pem").write_bytes(private_key_pem(key))
    for path in ("/v1/transactions", "/v1/members/mem_unknown"):  # an answer, and a refusal
        pointsnet("partner-call", "GET", path, "--key-file", str(tmp_path / "shop.pem"), "--key-id", key_id,
                  "--url", api)
    assert len(closed) == 2 and all(client.http.is_closed for client in closed)


# -- 5. the read helpers --------------------------------------------------------------------------------

def test_statements_reports_history_and_every_transaction(network, clock, api):
    shop, other = Partner(network, api), Partner(network, api)
    cycles = settled_days(network, clock, shop, other, 2)
    with PointsnetClient(api, shop.key_id, shop.keys[shop.key_id]) as client:
        newest = client.statements(limit=1)
        assert [s["cycle_date"] for s in newest["statements"]] == [cycles[1].isoformat()]
        older = client.statements(cursor=newest["next_cursor"], limit=1)
        assert [s["cycle_date"] for s in older["statements"]] == [cycles[0].isoformat()]
        statement = client.statement(cycles[0])
        assert statement["cycle_date"] == cycles[0].isoformat()
        csv = client.statement_csv(cycles[0].isoformat())
        assert hashlib.sha256(csv).hexdigest() == statement["statement_sha256"] and csv.decode() == \
            statement["statement_csv"]
        report = client.report(cycles[0], cycles[1])
        assert isinstance(report, dict) and report
        assert isinstance(client.report(cycles[0], cycles[1], format="csv"), bytes)
        every = list(client.iter_transactions(limit=1))
        assert every == client.transactions(limit=1000)["transactions"] and len(every) == 2
        member = every[0]["member_id"]
        page = client.history(member, limit=1)
        assert len(page["movements"]) == 1 and page["next_cursor"]
        assert len(client.history(member, page["next_cursor"], limit=10)["movements"]) >= 1
    shop.close()
    other.close()


def test_a_statement_file_that_is_not_the_one_listed_is_refused(network, clock, api):
    """A file whose SHA-256 is not its statement's ``statement_sha256`` (here: changed on the way to a
    client that does not verify answers) raises, never returned."""
    shop, other = Partner(network, api), Partner(network, api)
    [cycle] = settled_days(network, clock, shop, other, 1)
    real = httpx.HTTPTransport()

    def changed(request: httpx.Request) -> httpx.Response:
        response = real.handle_request(request)
        if request.url.path.endswith("/statement.csv"):
            content = response.read().replace(b",-", b",-9", 1)
            return httpx.Response(200, content=content, headers={"content-type": "text/csv"})
        return response

    with PointsnetClient(api, shop.key_id, shop.keys[shop.key_id], verify_responses=False,
                         transport=httpx.MockTransport(changed)) as client:
        with pytest.raises(StatementDigestError):
            client.statement_csv(cycle)
    shop.close()
    other.close()
