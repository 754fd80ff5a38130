"""POINTSNET_PUBLIC_AUTHORITY: what partners sign as ``@authority`` (docs/operations.md).

Found by review: behind a TLS load balancer the API saw plain http, so a network configured with
``points.example.com:443`` derived ``@authority`` ``points.example.com:443`` while a partner signing
``https://points.example.com/…`` covers ``points.example.com``: every request answered 401. Values
such as ``https://points.example.com`` refused every request with no error at start. And without the
setting, ``@authority`` is checked against the Host each request brings: a warning says so when an API
process starts."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from shared.config import Settings
from tests.cli.inprocess import environment, pointsnet
from tests.partner_api.conftest import Partner, assert_problem


def signed_for(partner: Partner, public_base: str, path: str) -> httpx.Request:
    """A GET sent to the test server, signed as a partner signs it for the network's public URL."""
    request = partner.build("GET", path, sign=False)
    view = httpx.Request("GET", public_base + path, headers=request.headers)
    partner.sign(view)
    for name in ("signature", "signature-input"):
        request.headers[name] = view.headers[name]
    return request


@pytest.mark.parametrize("configured", ["points.example.com:443", "Points.Example.COM", "points.example.com:80",
                                        "points.example.com"])
def test_a_request_signed_for_the_https_address_is_accepted(make_network, serve, configured):
    network = make_network(public_authority=configured)
    partner = Partner(network, serve(network))
    try:
        for public in ("https://points.example.com", "https://points.example.com:443", "https://POINTS.example.com"):
            response = partner.send(signed_for(partner, public, "/v1/transactions"))
            assert response.status_code == 200, (configured, public, response.text)
        assert_problem(partner.send(signed_for(partner, "https://points.example.com:8443", "/v1/transactions")),
                       401, "signature_invalid")
        assert_problem(partner.call("GET", "/v1/transactions"), 401, "signature_invalid")  # the Host seen
    finally:
        partner.close()


def test_a_port_that_is_not_a_default_one_is_signed_with_the_authority(make_network, serve):
    network = make_network(public_authority="points.example.com:8443")
    partner = Partner(network, serve(network))
    try:
        response = partner.send(signed_for(partner, "https://points.example.com:8443", "/v1/transactions?limit=1"))
        assert response.status_code == 200, response.text
        assert_problem(partner.send(signed_for(partner, "https://points.example.com", "/v1/transactions")),
                       401, "signature_invalid")
    finally:
        partner.close()


@pytest.mark.parametrize("value, normal", [
    ("points.example.com", "points.example.com"),
    ("Points.Example.com:443", "points.example.com"),
    ("points.example.com:80", "points.example.com"),
    ("points.example.com:8443", "points.example.com:8443"),
    ("  points.example.com  ", "points.example.com"),
    ("[2001:DB8::1]:443", "[2001:db8::1]"),
    ("[2001:db8::1]:8443", "[2001:db8::1]:8443"),
    ("10.0.0.5:08443", "10.0.0.5:8443"),
])
def test_the_setting_is_read_as_host_and_port_partners_sign(value, normal):
    assert Settings(public_authority=value).public_authority == normal
    assert Settings().public_authority is None


@pytest.mark.parametrize("value", [
    "https://points.example.com", "http://points.example.com:8080", "points.example.com/", "points.example.com/v1",
    "points.example.com?x=1", "points.example.com#top", "partner@points.example.com", "", "   ", ":443",
    "points.example.com:0", "points.example.com:65536", "points.example.com:https", "points example.com",
    "2001:db8::1", "[not-an-address]", "points.example.com:443:443",
])
def test_a_value_that_is_not_host_and_port_is_refused(value):
    with pytest.raises(ValidationError, match="public_authority"):
        Settings(public_authority=value)


@pytest.mark.parametrize("value, says", [
    ("https://points.example.com", "without a scheme"),
    ("points.example.com/", "no path"),
    ("", "empty"),
])
def test_the_command_line_refuses_it_in_one_line(tmp_path, value, says):
    done = pointsnet("db", "upgrade", env={"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_DATABASE_URL": None,
                                           "POINTSNET_PUBLIC_AUTHORITY": value})
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-500:]
    assert done.stderr.startswith("configuration error: POINTSNET_PUBLIC_AUTHORITY: ") and says in done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr


# -- without the setting: one warning when an API process starts serving --------------------------------

def _started_api(database_url, tmp_path, monkeypatch, caplog, authority: str | None) -> list[str]:
    import shared.observability
    from services.partner_api.app import from_environment

    monkeypatch.setattr(shared.observability, "configure_logging", lambda *_a, **_k: None)  # keep caplog's handler
    with environment({"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_DATABASE_URL": database_url,
                      "POINTSNET_PUBLIC_AUTHORITY": authority}), caplog.at_level(logging.WARNING):
        application = from_environment()
        with TestClient(application):  # the process starts serving (its lifespan)
            pass
        application.state.network.close()
    return [record.getMessage() for record in caplog.records
            if record.levelno == logging.WARNING and "POINTSNET_PUBLIC_AUTHORITY" in record.getMessage()]


def test_an_api_process_without_a_public_authority_warns_once(database_url, tmp_path, monkeypatch, caplog):
    [warning] = _started_api(database_url, tmp_path, monkeypatch, caplog, None)
    assert "Host" in warning and "another" in warning, warning


def test_an_api_process_with_a_public_authority_does_not_warn(database_url, tmp_path, monkeypatch, caplog):
    assert _started_api(database_url, tmp_path, monkeypatch, caplog, "points.example.com") == []


def test_a_signature_that_does_not_verify_says_what_the_network_read(make_network, serve):
    """A partner whose proxy rewrote the Host is told the @authority the network checked, beside the other
    derived components, so it can compare them with its own signature base (carried from the last note:
    signature_invalid gave no hint)."""
    network = make_network(public_authority="points.example.com")
    partner = Partner(network, serve(network))
    try:
        refused = partner.send(signed_for(partner, "https://staging.example.com", "/v1/transactions?limit=2"),
                               verify=False)
        problem = assert_problem(refused, 401, "signature_invalid")
        assert problem["network_read"] == {"@method": "GET", "@authority": "points.example.com",
                                           "@path": "/v1/transactions", "@query": "?limit=2"}
        assert "'points.example.com'" in problem["detail"] and "staging" not in problem["detail"]
    finally:
        partner.close()
