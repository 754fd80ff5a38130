"""Where webhooks may go, with private targets refused (production's setting): IPv6 forms that carry
a private IPv4 address are refused, and the address a delivery connects to is the very one judged
(a DNS answer that changes between the check and the connection gets nowhere). No internet needed:
names resolve through a stand-in resolver, and every connection that is made goes to 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.config import Settings
from shared.webhooks.addresses import is_public
from shared.webhooks.delivery import deliver_due
from shared.webhooks.dialing import NonPublicTarget, PublicOnlyBackend, PublicOnlyTransport
from shared.webhooks.endpoints import check_url, private_address, set_endpoint
from shared.webhooks.errors import InvalidWebhookUrl
from tests.factories import make_member, make_partner
from tests.quick_server import POLL_INTERVAL
from tests.webhooks.conftest import deliveries

PUBLIC = "93.184.215.14"  # never connected to: only ever judged


@pytest.fixture
def settings(tmp_path) -> Settings:
    """This module's network refuses private targets, as production does."""
    return Settings(data_dir=Path(tmp_path) / "data", webhook_allow_private_targets=False)


CARRYING_PRIVATE_IPV4 = [
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254 (cloud metadata)
    "2002:c0a8:10a::",  # 6to4 of 192.168.1.10
    "2002:6440:1::1",  # 6to4 of 100.64.0.1 (shared address space)
    "::ffff:10.0.0.8",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "64:ff9b::7f00:1",  # NAT64 (well-known prefix) of 127.0.0.1
    "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::a00:1",  # NAT64 (local-use prefix)
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
    "::a00:1",  # IPv4-compatible
    "::ffff:0:a00:1",  # IPv4-translated
]

# Special-purpose addresses that Python's is_global calls global
SPECIAL_PURPOSE = ["192.0.0.8", "192.0.0.9", "192.0.0.170", "192.88.99.1", "fec0::1", "feff::1", "3fff::1",
                   "::ffff:192.0.0.8", "2002:c000:8::1"]


@pytest.mark.parametrize("address", SPECIAL_PURPOSE)
def test_special_purpose_addresses_are_refused(address):
    assert not is_public(ipaddress.ip_address(address))
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(InvalidWebhookUrl):
        check_url(f"https://{literal}/hooks")


@pytest.mark.parametrize("address", CARRYING_PRIVATE_IPV4)
def test_ipv6_transition_addresses_carrying_a_private_ipv4_are_refused(address):
    assert not is_public(ipaddress.ip_address(address))
    with pytest.raises(InvalidWebhookUrl):
        check_url(f"https://[{address}]/hooks")


@pytest.mark.parametrize("address", ["2001:4860:4860::8888", "2002:5db8:d70e::1", "::ffff:93.184.215.14",
                                     PUBLIC])
def test_public_addresses_pass_whatever_form_they_take(address):
    literal = f"[{address}]" if ":" in address else address
    assert check_url(f"https://{literal}/hooks") == f"https://{literal}/hooks"


@pytest.mark.parametrize("url", ["https://[::1", "https://[fe80::1/hook", "https://example.org:99999/hook",
                                 "https://example.org:0/hook", "https://example.org:65536/hook",
                                 "https://example.org:-1/hook", "https://example.org:port/hook"])
@pytest.mark.parametrize("allow_private", [False, True])
def test_an_unparsable_url_or_an_impossible_port_is_an_invalid_webhook_url(url, allow_private):
    """Never a bare ValueError (a 500 in the dashboard, a traceback in the CLI), never accepted."""
    with pytest.raises(InvalidWebhookUrl) as refused:
        check_url(url, allow_private=allow_private)
    assert refused.value.code == "invalid_webhook_url" and refused.value.status == 422


@pytest.mark.parametrize("port", [1, 443, 8443, 65535])
def test_every_port_from_1_to_65535_is_accepted(port):
    url = f"https://{PUBLIC}:{port}/hooks"
    assert check_url(url) == url


def _zone(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    """Resolve names from ``answers`` (each lookup of a name takes its next answer; the last one
    repeats): a DNS server whose answer may change at every lookup. Answers the lookups made."""
    real, asked = socket.getaddrinfo, []

    def resolver(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in answers:
            return real(host, port, *args, **kwargs)
        asked.append(name)
        queue = answers[name]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return real(answer, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    return asked


def test_a_name_resolving_to_a_6to4_address_of_this_machine_is_refused(monkeypatch):
    _zone(monkeypatch, {"hooks.sixtofour.test": ["2002:7f00:1::1"]})
    assert private_address("hooks.sixtofour.test") == "2002:7f00:1::1"


class _Listener:
    """A TCP port on 127.0.0.1 that records every connection made to it (and closes it at once)."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(8)
        self.socket.settimeout(0.05)
        self.port = self.socket.getsockname()[1]
        self.peers: list = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                connection, peer = self.socket.accept()
            except (socket.timeout, OSError):
                continue
            self.peers.append(peer)
            connection.close()

    def close(self):
        self._stop.set()
        self._thread.join()
        self.socket.close()


def test_a_rebinding_name_never_gets_a_delivery_connected_to_this_machine(network, monkeypatch):
    """The name is public when registered and when checked before the send, then answers 127.0.0.1:
    the connection must go to an address that was judged, so nothing connects to this machine."""
    listener = _Listener()
    try:
        asked = _zone(monkeypatch, {"hooks.rebind.test": [PUBLIC, PUBLIC, "127.0.0.1"]})
        shop = make_partner(network, "Rebinder")
        network.tx(lambda tx: set_endpoint(tx, shop, f"https://hooks.rebind.test:{listener.port}/hooks"))
        network.earn(shop, make_member(network, shop), "e1", points=5)
        assert deliver_due(network) == {"delivered": 0, "retrying": 1, "dead": 0, "stale": 0}
    finally:
        listener.close()
    assert listener.peers == [], f"the delivery connected to this machine from {listener.peers}"
    assert len(asked) == 3  # registration, the check before the send, and the connection's own
    [row] = deliveries(network)
    assert row.status == "pending" and row.last_status_code is None
    assert row.last_error == "refused: the URL resolves to a non-public address (127.0.0.1)"


def test_an_answer_with_any_private_address_connects_nowhere(monkeypatch):
    listener = _Listener()
    backend = PublicOnlyBackend(resolver=lambda host, port: [PUBLIC, "127.0.0.1"])
    try:
        with httpx.Client(transport=PublicOnlyTransport(ssl.create_default_context(), backend)) as client:
            with pytest.raises(httpx.ConnectError) as refused:
                client.post(f"https://hooks.mixed.test:{listener.port}/hooks", content=b"{}")
    finally:
        listener.close()
    assert isinstance(refused.value.__cause__, NonPublicTarget) and listener.peers == []


# -- the pinned connection is still TLS to the URL's name ----------------------------------------

NAME = "hooks.pinned.test"


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "receiver.pem", directory / "receiver.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_a_pinned_connection_keeps_the_names_sni_host_header_and_certificate_check(tmp_path):
    cert_file, key_file = _certificate(tmp_path)
    seen: dict = {"sni": [], "host": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            seen["host"].append(self.headers["host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert_file, key_file)
    server_tls.sni_callback = lambda sock, name, context: seen["sni"].append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = server_tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(POLL_INTERVAL,), daemon=True).start()
    port = server.server_address[1]
    lookups = []

    def resolver(host, port_):
        lookups.append(host)
        return ["127.0.0.1"] if host == NAME else []

    # this machine is allowed here, for the test's receiver: what is checked is the connection itself
    backend = PublicOnlyBackend(judge=lambda address: address.is_loopback, resolver=resolver)
    trusted = ssl.create_default_context(cafile=str(cert_file))
    try:
        with httpx.Client(transport=PublicOnlyTransport(trusted, backend)) as client:
            answer = client.post(f"https://{NAME}:{port}/hooks", content=b"{}")
        with httpx.Client(transport=PublicOnlyTransport(ssl.create_default_context(), backend)) as client:
            with pytest.raises(httpx.ConnectError):  # the certificate is still checked against the name
                client.post(f"https://{NAME}:{port}/hooks", content=b"{}")
    finally:
        server.shutdown()
        server.server_close()
    assert answer.status_code == 204
    assert seen["sni"][0] == NAME and seen["host"] == [f"{NAME}:{port}"]
    assert lookups == [NAME, NAME]  # one lookup per connection, never the system resolver's own
