"""Observability: one structured log event per request, Prometheus metrics, request ids."""

import json
import logging
import re
import time

from shared.observability import configure_logging


def test_every_request_is_one_log_event_with_partner_and_transaction_but_no_personal_data(
        partner_factory, caplog):
    shop = partner_factory()
    caplog.set_level(logging.INFO, logger="pointsnet.request")
    member = shop.enrol(phone="+8613912345678", email="li.wei@example.com")
    earned = shop.call("POST", "/v1/earn", {"member_id": member, "reference": "till-9", "points": 40})
    assert earned.status_code in (200, 201)
    refused = shop.call("GET", "/v1/transactions", sign=False)
    assert refused.status_code == 401
    deadline = time.monotonic() + 10  # the event is written just after the answer has gone out
    while len(events := [r for r in caplog.records if r.name == "pointsnet.request"]) < 3:
        assert time.monotonic() < deadline, [r.__dict__ for r in events]
        time.sleep(0.05)
    earn = next(r for r in events if r.route == "/v1/earn")
    assert (earn.partner_id, earn.status, earn.transaction_id) == (shop.partner_id, earned.status_code,
                                                                   earned.json()["transaction_id"])
    assert earned.headers["x-request-id"] == earn.request_id
    door = next(r for r in events if r.status == 401)
    assert door.problem_code == "signature_missing" and door.partner_id is None
    logged = caplog.text + " ".join(json.dumps(r.__dict__, default=str) for r in events)
    assert "13912345678" not in logged and "li.wei" not in logged


def test_metrics_count_requests_refusals_and_outstanding_points(partner_factory, api):
    import httpx

    shop = partner_factory()
    member = shop.enrol(phone="+8613912340000")
    assert shop.call("POST", "/v1/earn", {"member_id": member, "reference": "m-1", "points": 25}).status_code \
        in (200, 201)
    shop.call("GET", "/v1/transactions", sign=False)
    assert httpx.get(f"{api}/openapi.json").status_code == 200
    text = httpx.get(f"{api}/metrics").text
    # FastAPI's own pages under their own fixed labels, not with the paths no route names ("/*")
    assert 'pointsnet_http_requests_total{method="GET",route="/openapi.json",status="200"}' in text
    assert 'pointsnet_http_requests_total{method="POST",route="/v1/earn",status="201"}' in text \
        or 'pointsnet_http_requests_total{method="POST",route="/v1/earn",status="200"}' in text
    assert 'pointsnet_signature_failures_total{code="signature_missing"}' in text
    assert 'pointsnet_outstanding_points{billing="postpaid"} 25.0' in text
    assert 'pointsnet_ledger_entries_total{kind="earn"}' in text
    assert 'pointsnet_webhook_backlog{status="pending"} 0.0' in text


def test_json_logs_are_one_object_per_line(capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("json")
        logging.getLogger("pointsnet.job").info("job", extra={"event": "job", "job": "settlement",
                                                              "outcome": "ok"})
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert (record["logger"], record["event"], record["job"], record["level"]) == \
        ("pointsnet.job", "job", "settlement", "INFO")


def test_metrics_are_served_with_the_database_unreachable(network, settings, tmp_path, caplog):
    """The gauges read from the database could not be, and the scrape answered 500: Prometheus lost every
    series of the process (requests, 5xx, signature failures) for the whole outage."""
    import socket

    from fastapi.testclient import TestClient

    from services.partner_api.app import create_app
    from shared.network import Network

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    network.signing_key  # noqa: B018 - the network's key, made before the outage as a running process has it
    down = Network(settings, database_url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/x?connect_timeout=2")
    try:
        with TestClient(create_app(down), raise_server_exceptions=False) as client:
            assert client.get("/health/ready").status_code == 503
            caplog.set_level(logging.WARNING, logger="pointsnet.api")
            scraped = client.get("/metrics")
        assert scraped.status_code == 200, scraped.text[:300]
        assert "pointsnet_http_requests_total" in scraped.text
        assert re.search(r"^pointsnet_metrics_database_read_failures_total [1-9]", scraped.text, re.M)
        assert any(r.getMessage().startswith("metrics: the gauges read from the database kept their last values: "
                                             "OperationalError") for r in caplog.records)
    finally:
        down.close()
