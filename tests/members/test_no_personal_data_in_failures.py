"""Nothing personal in what failures leave behind: the request log and the metrics of a path no route
names, the log of a database error that escapes a request or a job, and the refusal of a phone number
that is not one (stored with the Idempotency-Key, shown on the dashboard)."""

from __future__ import annotations

import json
import logging
import re
import time

import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError

from services.dashboard.app import create_dashboard
from services.partner_api.app import create_app
from shared.errors import InvalidContact
from shared.jobs.runner import Job, JobRunner
from shared.members import enrolment
from shared.members.privacy import mask_phone, normalise_phone
from shared.models import MemberLink
from tests.partner_api.conftest import api, partners, serve  # noqa: F401  (fixtures)

CUSTOMER_REF = "CREF-7731-SECRET"
PHONE = "+8613812345678"


def logged(records) -> str:
    """Every record's message, traceback and structured fields, as a JSON log line would carry them."""
    formatter = logging.Formatter("%(message)s")
    return "\n".join(formatter.format(record) + json.dumps(record.__dict__, default=str) for record in records)


def request_events(caplog, count: int) -> list[logging.LogRecord]:
    deadline = time.monotonic() + 10  # the event is written just after the answer has gone out
    while len(events := [r for r in caplog.records if r.name == "pointsnet.request"]) < count:
        assert time.monotonic() < deadline, len(events)
        time.sleep(0.02)
    return events


def label_sets() -> set[str]:
    return {line.split(" ")[0] for line in generate_latest().decode().splitlines()
            if line.startswith(("pointsnet_http_requests_total{", "pointsnet_http_request_duration_seconds_count{"))}


def test_paths_no_route_names_are_labelled_by_prefix_never_by_the_path(network, caplog):
    caplog.set_level(logging.DEBUG)
    app = create_app(network)
    app.mount("/dashboard", create_dashboard(network))
    client = TestClient(app, follow_redirects=False)

    def unknown(n: int) -> list[str]:
        return [f"/api/v1/members/+86138000{n:05d}", f"/member{n}@example.com", f"/v1/members/+86138000{n:05d}/x",
                f"/dashboard/member{n}@example.com", f"/dashboard/static/member{n}@example.com"]

    for path in unknown(0):
        assert client.get(path + "?q=1").status_code in (401, 404)
    assert client.get("/dashboard/login").status_code == 200
    before = label_sets()
    for n in range(1, 21):
        for path in unknown(n):
            client.get(path)
    events = request_events(caplog, 6 + 20 * 5)
    assert label_sets() == before, "distinct unknown paths must not add label sets"
    routes = {event.route for event in events}
    assert routes == {"/*", "/v1/*", "/dashboard/*", "/dashboard/static/*", "/dashboard/login"}, routes
    server_side = [r for r in caplog.records if r.name.split(".")[0] != "httpx"]  # not the test's client
    text = logged(server_side) + generate_latest().decode()
    assert "@example.com" not in text and "86138000" not in text and "member1" not in text


@pytest.mark.usefixtures("api")
def test_a_database_error_escaping_an_enrolment_logs_no_customer_ref_nor_phone(network, partners, caplog,
                                                                                monkeypatch):
    shop, books = partners("CoffeeCo"), partners("BookMart")
    other = books.ok("POST", "/v1/members", {"phone": "+8613900001111"})["member_id"]  # not linked to shop

    def clashing(tx, partner_id, member_id, customer_ref):  # a twin's link with the same customer_ref, unseen by the check
        for who in (other, member_id):
            tx.session.execute(insert(MemberLink.__table__).values(partner_id=partner_id, member_id=who,
                                                                   customer_ref=customer_ref, linked_at=tx.now))

    monkeypatch.setattr(enrolment, "_link", clashing)
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    answer = shop.call("POST", "/v1/members", {"phone": PHONE, "customer_ref": CUSTOMER_REF})
    assert answer.status_code == 500, answer.text
    request_events(caplog, 1)
    text = logged(caplog.records)
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures, "the failure is logged"
    # enough for an operator: where, what kind of error, which statement and constraint
    failure = logged(failures)
    assert "POST /v1/members" in failure and "IntegrityError" in failure and "member_links" in failure
    assert "Traceback" in failure and "clashing" in failure
    if network.db.dialect == "postgresql":  # PostgreSQL's words for it, without its DETAIL's row
        assert 'duplicate key value violates unique constraint "' in failure, failure
    assert CUSTOMER_REF not in text and not re.search(r"(?<![\d.])7731(?![\d.])", text)  # not a timestamp's digits
    assert PHONE[3:] not in text and PHONE[-8:] not in text


def test_a_database_error_escaping_a_job_logs_no_values(network, caplog):
    ref = "JOB-REF-SECRET-55"

    def job():
        def unit(tx):
            for n in range(2):
                tx.session.execute(insert(MemberLink.__table__).values(
                    partner_id="ptn_missing", member_id=f"mem_missing{n}", customer_ref=ref, linked_at=tx.now))
        network.tx(unit, attempts=1)

    caplog.set_level(logging.DEBUG)
    runner = JobRunner(network.db, [Job("clash", 60, job)])
    assert runner.run_job(runner.jobs[0]) is False
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures and "clash" in logged(failures) and "member_links" in logged(failures)
    assert ref not in logged(caplog.records) and "SECRET-55" not in logged(caplog.records)


def test_the_description_of_a_database_error_names_kind_code_and_statement_but_no_value(network):
    ref = "DESC-REF-SECRET-99"

    def unit(tx):
        for n in range(2):  # a partner that does not exist
            tx.session.execute(insert(MemberLink.__table__).values(
                partner_id="ptn_none", member_id=f"mem_none{n}", customer_ref=ref, linked_at=tx.now))

    with pytest.raises(DBAPIError) as caught:
        network.tx(unit, attempts=1)
    assert ref not in str(caught.value), "SQLAlchemy's text carries the parameters"
    from shared.log_redaction import describe_database_error

    described = describe_database_error(caught.value)
    assert "IntegrityError" in described and "INSERT INTO member_links" in described, described
    if network.db.dialect == "postgresql":
        assert re.search(r"SQLSTATE 23\d\d\d", described), described
    assert ref not in described and "ptn_none" not in described and "mem_none" not in described, described


@pytest.mark.parametrize("raw", ["91234567", "1234567", "123456789012", "13812345678", "12", "123456"])
def test_a_masked_phone_shows_at_most_a_third_of_its_digits(raw):
    masked = mask_phone(raw)
    shown = re.sub(r"\D", "", masked)
    assert len(shown) <= min(4, len(raw) // 3), (raw, masked)
    assert raw.endswith(shown), (raw, masked)


def test_a_valid_number_is_masked_as_documented():
    """The country's code (its first two digits) and at most a third of the other digits."""
    assert mask_phone("+8613912345678") == "+86*******5678"  # dashboard.md, "A member's page"
    assert mask_phone("+86 139 1234 5678") == "+86*******5678"
    assert mask_phone("+12025550123") == "+12******123"
    assert mask_phone("+4930123") == "*****23"  # too short to be one: no country shown


@pytest.mark.parametrize("raw", ["91234567", "+86 912 345", "1381234567899999", "9123x4567"])
def test_a_refused_phone_number_is_not_repeated(raw):
    with pytest.raises(InvalidContact) as refused:
        normalise_phone(raw, "CN")
    message = str(refused.value)
    digits = re.sub(r"\D", "", raw)
    assert not any(digits[i:i + 3] in re.sub(r"\D", "", message) for i in range(len(digits) - 2)), message


def test_the_log_handler_keeps_database_values_out_of_any_logger(network, capsys):
    """A database error logged elsewhere (uvicorn's "Exception in ASGI application" after the dashboard's
    error page, a library's warning) goes through the handler of configure_logging without its values."""
    from shared.observability import configure_logging

    ref = "HANDLER-REF-SECRET-31"

    def unit(tx):
        tx.session.execute(insert(MemberLink.__table__).values(
            partner_id="ptn_none", member_id="mem_none", customer_ref=ref, linked_at=tx.now))

    with pytest.raises(DBAPIError) as caught:
        network.tx(unit, attempts=1)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("json")
        try:
            raise RuntimeError("the page failed") from caught.value
        except RuntimeError:
            logging.getLogger("asgi.server").exception("Exception in ASGI application")  # as uvicorn logs it
        logging.getLogger("somewhere").warning("could not record: %s", caught.value)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    assert len(lines) == 2
    assert "IntegrityError" in lines[0]["message"] and "the page failed" in lines[0]["message"]
    assert "member_links" in lines[1]["message"]
    assert ref not in json.dumps(lines) and "SECRET-31" not in json.dumps(lines)


def test_the_dashboard_logs_a_failed_error_page_under_its_route_label_never_the_path(network, caplog,
                                                                                     monkeypatch):
    """The error page itself cannot be made (say, the database is gone): the line that says so names
    the request by its route label, as the request log does, not by the path a visitor typed."""
    import services.dashboard.app as dashboard

    def no_page(*args, **kwargs):
        raise RuntimeError("the page cannot be made")

    monkeypatch.setattr(dashboard, "page", no_page)
    root = create_app(network)
    root.mount("/dashboard", create_dashboard(network))
    client = TestClient(root, raise_server_exceptions=False, follow_redirects=False)
    caplog.set_level(logging.DEBUG)
    answer = client.get(f"/dashboard/members/by-phone/{PHONE}/member1@example.com")
    assert answer.status_code == 500 and answer.text == "Internal Server Error", answer.text
    failed = [r for r in caplog.records if r.name == "pointsnet.dashboard" and r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in failed] == ["the error page for GET /dashboard/* failed"], failed
    server_side = [r for r in caplog.records if r.name.split(".")[0] != "httpx"]  # not the test's client
    assert PHONE[3:] not in logged(server_side) and "@example.com" not in logged(server_side)
