"""Connecting to a webhook receiver only at an address judged public, the one that was judged.

httpx resolves a receiver's name when it opens a connection, in httpcore's network backend. A check
that resolves the name beforehand and lets httpx resolve it again can be passed by a DNS answer
that changes in between (rebinding: public for the check, 127.0.0.1 for the connection). Here the
backend resolves the name once, judges every address of that answer, and connects to those very
addresses. Only the TCP connection is made here: TLS (the SNI and the certificate check) and the
Host header still use the URL's name, as httpx makes them.

A delivery also has a total time (``within``): the name's resolution, the connection, TLS and every
read and write together. httpx's own timeouts bound each step alone (a receiver sending a byte every
few seconds never trips them), and the system resolver has none at all; here each step gets at most
what is left of the delivery's time, and resolution runs in a thread the caller stops waiting for.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Callable, Iterable

import httpcore
import httpx

from shared.webhooks.addresses import Address, is_public, parse

# httpx's own defaults for its transport's pool
LIMITS = {"max_connections": 100, "max_keepalive_connections": 20, "keepalive_expiry": 5.0}
RESOLVE_TIMEOUT = 5.0  # seconds a name's resolution may take, within a delivery's time or not

_time = threading.local()  # the delivery this thread is sending: when its time is up
_lookups: dict[tuple, Future] = {}  # resolutions running, so that a slow name ties up one thread
_lookups_lock = threading.Lock()


class DeadlineExceeded(httpcore.TimeoutException):
    """The delivery's total time ran out (resolution, connection and answer together)."""


@contextmanager
def within(seconds: float):
    """Everything this thread sends inside takes at most ``seconds`` in total."""
    outer = getattr(_time, "deadline", None)
    _time.deadline = time.monotonic() + seconds
    try:
        yield
    finally:
        _time.deadline = outer


def time_left(step: float | None) -> float | None:
    """What a step may take: its own bound, or less if the delivery's time ends sooner; raises
    ``DeadlineExceeded`` once it has ended."""
    deadline = getattr(_time, "deadline", None)
    if deadline is None:
        return step
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("the delivery's time ran out")
    return left if step is None else min(step, left)


def bounded_lookup(key: tuple, lookup: Callable[[], list], timeout: float | None = RESOLVE_TIMEOUT) -> list:
    """``lookup()``, waited for at most ``timeout`` (and the delivery's time): a resolver cannot be
    interrupted, so it runs in a daemon thread left to finish alone. Lookups of one key running at
    once share that thread: a name that never answers holds one thread, not one per delivery."""
    wait = time_left(timeout)
    with _lookups_lock:
        future = _lookups.get(key)
        if future is None:
            future = _lookups[key] = Future()

            def run():
                try:
                    future.set_result(lookup())
                except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
                    future.set_exception(exc)
                finally:
                    with _lookups_lock:
                        _lookups.pop(key, None)

            threading.Thread(target=run, name=f"resolve {key[0]}", daemon=True).start()
    try:
        return future.result(wait)
    except TimeoutError:
        raise DeadlineExceeded(f"resolving {key[0]} took longer than {wait:.3g} s") from None


class NonPublicTarget(httpcore.ConnectError):
    """The receiver's name resolved to an address that is not public: nothing was connected."""

    def __init__(self, host: str, address: Address):
        super().__init__(f"{host} resolves to a non-public address ({address})")
        self.address = address


def resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (an address resolves to itself)."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def anywhere(address: Address) -> bool:
    """The judge where the operator allows private targets: every address may be connected to."""
    return True


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read, write and TLS handshake waits at most what is left of the
    delivery's time (on a kept-alive connection: of the delivery using it now)."""

    def __init__(self, stream: httpcore.NetworkStream):
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return self._stream.read(max_bytes, timeout=time_left(timeout))
        except DeadlineExceeded as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            self._stream.write(buffer, timeout=time_left(timeout))
        except DeadlineExceeded as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        try:
            left = time_left(timeout)
        except DeadlineExceeded as exc:
            raise httpcore.ConnectTimeout(str(exc)) from exc
        return DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout=left))

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class PublicOnlyBackend(httpcore.NetworkBackend):
    """httpcore's synchronous backend, connecting only to addresses of one DNS answer, all judged
    (``judge=anywhere``: all allowed), within the delivery's time (see ``within``)."""

    def __init__(self, judge: Callable[[Address], bool] = is_public,
                 resolver: Callable[[str, int], list[str]] = resolve):
        self._judge, self._resolve = judge, resolver
        self._backend = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable | None = None) -> httpcore.NetworkStream:
        try:
            found = bounded_lookup((host, port, self._resolve), lambda: self._resolve(host, port))
            addresses = [parse(address) for address in dict.fromkeys(found)]
        except DeadlineExceeded as exc:
            raise httpcore.ConnectTimeout(f"{host}: {exc}") from exc
        except (OSError, UnicodeError, ValueError) as exc:
            raise httpcore.ConnectError(f"{host}: {exc}") from exc
        refused = next((address for address in addresses if not self._judge(address)), None)
        if refused is not None:
            raise NonPublicTarget(host, refused)
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        failure: Exception | None = None
        for address in addresses:  # each in turn, as socket.create_connection tries a name's addresses
            try:
                left = time_left(timeout)
            except DeadlineExceeded as exc:
                raise httpcore.ConnectTimeout(f"{host}: {exc}") from exc
            try:
                return DeadlineStream(self._backend.connect_tcp(str(address), port, timeout=left,
                                                                local_address=local_address,
                                                                socket_options=socket_options))
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable | None = None) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("webhooks are sent over TCP only")

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class PublicOnlyTransport(httpx.HTTPTransport):
    """httpx's own transport (HTTP/1.1, TLS, pooling, its exceptions) whose connections are opened by
    ``PublicOnlyBackend``. httpx takes no network backend itself, so the connection pool it made is
    replaced by one made the same way, with the backend."""

    def __init__(self, verify: ssl.SSLContext, backend: httpcore.NetworkBackend | None = None):
        super().__init__(verify=verify)
        self._pool = httpcore.ConnectionPool(ssl_context=verify, network_backend=backend or PublicOnlyBackend(),
                                             http1=True, http2=False, **LIMITS)


def refused_target(exc: BaseException) -> NonPublicTarget | None:
    """The refusal behind an exception httpx raised for a request, if that is what it was."""
    for _depth in range(10):
        if exc is None or isinstance(exc, NonPublicTarget):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None
