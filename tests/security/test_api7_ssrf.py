"""OWASP API7:2023 Server side request forgery: partner webhook URLs.

A partner's webhook URL makes the network send requests; it must not point the network at its own
infrastructure (loopback, private networks, link-local cloud metadata, reserved ranges). Refused
at registration (the API answer / the command's error) and checked again before every delivery (a
name can resolve elsewhere later), unless the operator allows private targets explicitly
(``POINTSNET_WEBHOOK_ALLOW_PRIVATE_TARGETS``; the test suite's receivers listen on 127.0.0.1).
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import httpx
import pytest

from shared.config import Settings
from shared.network import Network
from shared.webhooks.delivery import Claimed, send
from shared.webhooks.endpoints import check_url, set_endpoint
from shared.webhooks.errors import InvalidWebhookUrl
from tests.cli.inprocess import pointsnet
from tests.factories import make_partner

PRIVATE_TARGETS = [
    "http://127.0.0.1:8400/hooks", "http://localhost/hooks", "https://localhost/hooks", "https://127.1/hooks",
    "https://[::1]/hooks", "https://0.0.0.0/hooks", "https://10.0.0.8/hooks", "https://172.16.5.4/hooks",
    "https://192.168.1.10/hooks", "https://169.254.169.254/latest/meta-data/", "https://[fe80::1]/hooks",
    "https://[::ffff:127.0.0.1]/hooks", "https://[fd00::1]/hooks", "https://100.64.0.1/hooks",
    "https://2130706433/hooks", "https://0x7f000001/hooks", "https://224.0.0.1/hooks", "https://240.0.0.1/hooks",
]


@pytest.mark.parametrize("url", PRIVATE_TARGETS)
def test_private_loopback_and_link_local_targets_are_refused(url):
    with pytest.raises(InvalidWebhookUrl):
        check_url(url)


def test_public_targets_pass_and_an_operator_can_allow_private_ones():
    assert check_url("https://93.184.215.14/hooks") == "https://93.184.215.14/hooks"
    assert check_url("http://127.0.0.1:9/hooks", allow_private=True) == "http://127.0.0.1:9/hooks"
    with pytest.raises(InvalidWebhookUrl):  # still http only to this machine, even when allowed
        check_url("http://10.0.0.8/hooks", allow_private=True)


def test_registration_follows_the_operator_setting(tmp_path, database_url, clock):
    strict = Network(Settings(data_dir=tmp_path / "strict"), database_url=database_url, clock=clock)
    try:
        partner = make_partner(strict)
        with pytest.raises(InvalidWebhookUrl) as refused:
            strict.tx(lambda tx: set_endpoint(tx, partner, "https://169.254.169.254/latest/meta-data/"))
        assert refused.value.code and "POINTSNET_WEBHOOK_ALLOW_PRIVATE_TARGETS" in refused.value.detail
    finally:
        strict.close()
    lenient = Network(Settings(data_dir=tmp_path / "lenient", webhook_allow_private_targets=True),
                      database_url=database_url, clock=clock)
    try:
        partner = make_partner(lenient)
        assert lenient.tx(lambda tx: set_endpoint(tx, partner, "http://127.0.0.1:9/hooks"))["url"]
    finally:
        lenient.close()


class _NeverCalled:
    def post(self, *args, **kwargs):
        raise AssertionError("the network must not connect to a private target")


def test_delivery_checks_the_target_again_and_never_connects(network):
    claimed = Claimed("whd_1", "token", "https://localhost:9/hooks", "{}", ["whsec_test"], 0)
    outcome = send(_NeverCalled(), claimed, network.clock, network.signing_key, allow_private=False)
    assert outcome.status_code is None and "non-public address" in outcome.error


def _idn_zone(monkeypatch) -> dict:
    """A stable DNS zone (no rebinding) where the IDNA 2003 form of ``straße.idn-attacker.test``
    (``strasse``, Python's ``idna`` codec) is public and its IDNA 2008 form (``xn--strae-oqa``,
    what httpx dials) is this machine."""
    real = socket.getaddrinfo
    zone = {"strasse.idn-attacker.test": "93.184.215.14", "xn--strae-oqa.idn-attacker.test": "127.0.0.1"}

    def resolver(host, port, *args, **kwargs):  # as socket.getaddrinfo: a str host goes through "idna"
        name = host.decode() if isinstance(host, bytes) else host.encode("idna").decode()
        return real(zone.get(name, host), port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    return zone


def test_an_internationalised_name_is_judged_under_the_name_httpx_dials(monkeypatch):
    _idn_zone(monkeypatch)
    with pytest.raises(InvalidWebhookUrl):
        check_url("https://straße.idn-attacker.test/hooks")
    with pytest.raises(InvalidWebhookUrl):  # a name httpx cannot encode is refused, not skipped
        check_url("https://☃\ufe0f.example/hooks")


def test_delivery_to_an_internationalised_name_that_dials_this_machine_never_connects(monkeypatch, network):
    _idn_zone(monkeypatch)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    claimed = Claimed("whd_1", "token", f"https://straße.idn-attacker.test:{port}/hooks", "{}", ["whsec_test"], 1)
    outcome = {}

    def deliver():
        with httpx.Client(timeout=httpx.Timeout(3.0), follow_redirects=False) as client:
            outcome["o"] = send(client, claimed, network.clock, network.signing_key, allow_private=False)

    thread = threading.Thread(target=deliver)
    thread.start()
    peer = None
    try:
        listener.settimeout(2)
        try:
            connection, peer = listener.accept()
            connection.close()
        except socket.timeout:
            pass
    finally:
        thread.join(15)
        listener.close()
    assert peer is None, f"connected to {peer}"
    assert outcome["o"].status_code is None and outcome["o"].error.startswith("refused")


def test_the_command_refuses_a_private_target_without_the_setting(tmp_path):
    env = {"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_DATABASE_URL": None,
           "POINTSNET_WEBHOOK_ALLOW_PRIVATE_TARGETS": None}

    def cli(*args):
        return pointsnet(*args, env=env)

    assert cli("db", "upgrade").returncode == 0
    network = Network(Settings(data_dir=Path(env["POINTSNET_DATA_DIR"])))
    partner = make_partner(network)
    network.close()
    refused = cli("webhooks", "set", partner, "--url", "https://10.1.2.3/hooks")
    assert refused.returncode != 0 and "private" in refused.stderr
