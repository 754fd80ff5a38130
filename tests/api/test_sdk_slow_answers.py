"""The SDK's ``timeout`` bounds each attempt's whole answer — status line, headers and body — against a
broken proxy that sends it a byte at a time (httpx bounds each read, not their sum). Past the deadline the
answer counts as lost: a ReadTimeout, retried with the same Idempotency-Key. The sends stuck behind such a
proxy never keep the client's other calls waiting, and never keep a script from exiting."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
from contextlib import contextmanager

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.sdk import PointsnetClient

BODY_TRICKLE = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n"
HEADERS_TRICKLE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-pad: " + b"a" * 400
                   + b"\r\ncontent-length: 2\r\n\r\n{}")
AT_ONCE = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


class Trickler:
    """A server that answers ``at_once`` first, then the rest a byte every 0.1 s (each byte well within
    httpx's read timeout); once ``healthy`` is set, new requests are answered at once in full."""

    def __init__(self, at_once: bytes, rest: bytes = b" " * 10_000):
        self.at_once, self.rest = at_once, rest
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.keys: list[str] = []
        self.sent = 0
        self.received = 0
        self.healthy = threading.Event()
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            request = conn.recv(65536).decode(errors="replace")
            self.received += 1
            self.keys.extend(line.split(":", 1)[1].strip() for line in request.split("\r\n")
                             if line.lower().startswith("idempotency-key:"))
            try:
                if self.healthy.is_set():
                    conn.sendall(AT_ONCE)
                    return
                conn.sendall(self.at_once)
                for i in range(len(self.rest)):
                    if self.stop.wait(0.1):
                        return
                    conn.sendall(self.rest[i:i + 1])
                    self.sent += 1
            except OSError:  # the client gave up
                pass

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@contextmanager
def trickling(at_once: bytes, rest: bytes = b" " * 10_000):
    server = Trickler(at_once, rest)
    try:
        yield server
    finally:
        server.close()


def client(url: str, **options) -> PointsnetClient:
    return PointsnetClient(url, "key_x", Ed25519PrivateKey.generate(), verify_responses=False, **options)


def test_a_body_that_trickles_in_is_a_timeout_of_the_whole_attempt_retried_with_the_same_key():
    with trickling(BODY_TRICKLE) as server:
        sdk = client(server.url, timeout=1.0, retries=1)
        try:
            with pytest.raises(httpx.ReadTimeout, match="in all"):
                sdk.call("POST", "/v1/earn", {"member_id": "m", "reference": "r", "points": 1})
        finally:
            sdk.close()
    assert len(server.keys) == 2 and len(set(server.keys)) == 1  # two attempts, one key


def test_headers_that_trickle_in_are_a_timeout_of_the_whole_attempt_too():
    """The deadline was checked only while the body arrived: headers sent a byte at a time held an attempt
    for as long as they went on (hours at the default timeout)."""
    with trickling(b"", HEADERS_TRICKLE) as server:
        sdk = client(server.url, timeout=1.0, retries=1)
        try:
            with pytest.raises(httpx.ReadTimeout, match="in all"):
                sdk.call("POST", "/v1/earn", {"member_id": "m", "reference": "r", "points": 1})
            given_up_after = server.sent
        finally:
            sdk.close()
    assert len(server.keys) == 2 and len(set(server.keys)) == 1
    assert given_up_after < len(HEADERS_TRICKLE)  # both attempts ended before one answer's headers were in


def test_sends_stuck_behind_a_broken_proxy_never_keep_the_clients_next_call_waiting():
    """The sends ran on a fixed pool of 64 threads: once as many were stuck after their callers gave up,
    every later call waited in the pool's queue and timed out unsent, the server healthy again or not."""
    with trickling(b"", HEADERS_TRICKLE) as server:
        sdk = client(server.url, timeout=0.5, retries=0)
        try:
            def call(n: int) -> None:
                with pytest.raises(httpx.ReadTimeout):
                    sdk.call("POST", "/v1/earn", {"member_id": "m", "reference": f"r{n}", "points": 1})

            callers = [threading.Thread(target=call, args=(n,)) for n in range(70)]
            for thread in callers:
                thread.start()
            for thread in callers:
                thread.join(30)
            stuck = server.received
            server.healthy.set()
            answer = sdk.call("GET", "/v1/network/keys")  # 70 sends still stuck on the proxy meanwhile
            assert answer.status == 200 and server.received == stuck + 1
        finally:
            sdk.close()


def test_a_script_whose_call_timed_out_still_exits():
    """The pool's threads were joined at interpreter exit: a script that let its client go without close()
    after a timed-out call could not end while the proxy kept trickling."""
    with trickling(b"", HEADERS_TRICKLE * 20) as server:
        script = textwrap.dedent(f"""
            import httpx
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
            from shared.sdk import PointsnetClient
            sdk = PointsnetClient({server.url!r}, "key_x", Ed25519PrivateKey.generate(), verify_responses=False,
                                  timeout=0.5, retries=0)
            try:
                sdk.call("GET", "/v1/network/keys")
            except httpx.ReadTimeout:
                print("timed out")
        """)
        try:
            done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("the script did not exit while the proxy kept trickling")
    assert done.returncode == 0 and done.stdout.strip() == "timed out", (done.returncode, done.stderr[-800:])


def test_a_closed_client_sends_nothing_more():
    with trickling(AT_ONCE) as server:
        sdk = client(server.url, timeout=1.0, retries=0)
        assert sdk.call("GET", "/v1/network/keys").status == 200
        sdk.close()
        with pytest.raises(RuntimeError, match="closed"):
            sdk.call("GET", "/v1/network/keys")
    assert server.received == 1


def test_a_client_dropped_without_close_is_freed_with_its_threads():
    """An idle sender thread kept its last send, which kept the client: a client dropped without close()
    was never freed, nor its thread, connection pool and sockets (found reviewing ff91e21)."""
    import gc
    import weakref

    def answered(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={})

    before = threading.active_count()
    dropped = []
    for _ in range(20):
        sdk = client("http://network.test", timeout=5.0, retries=0, transport=httpx.MockTransport(answered))
        assert sdk.call("GET", "/v1/network/keys").status == 200
        dropped.append(weakref.ref(sdk))
        del sdk
    gc.collect()
    assert [ref for ref in dropped if ref() is not None] == []
    deadline = threading.Event()
    for _ in range(50):  # the idle threads end once told (each at its next look at the queue)
        if threading.active_count() <= before:
            break
        deadline.wait(0.1)
    assert threading.active_count() <= before, threading.enumerate()


def test_a_call_whose_thread_cannot_start_is_never_sent(monkeypatch):
    """At the system's limit on threads the call fails; it stayed queued and the next thread sent it,
    ahead of the next call (found reviewing ff91e21)."""
    sent = []

    def answered(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(200, json={})

    sdk = client("http://network.test", timeout=5.0, retries=0, transport=httpx.MockTransport(answered))
    real_start = threading.Thread.start

    def no_thread(self):
        raise RuntimeError("can't start new thread")

    try:
        monkeypatch.setattr(threading.Thread, "start", no_thread)
        with pytest.raises(RuntimeError, match="can't start new thread"):
            sdk.call("GET", "/v1/first")
        monkeypatch.setattr(threading.Thread, "start", real_start)
        assert sdk.call("GET", "/v1/second").status == 200
    finally:
        sdk.close()
    assert sent == ["/v1/second"]
