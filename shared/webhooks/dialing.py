"""Connecting to a webhook receiver only at an address judged public, the one that was judged.

httpx resolves a receiver's name when it opens a connection, in httpcore's network backend. A check
that resolves the name beforehand and lets httpx resolve it again can be passed by a DNS answer
that changes in between (rebinding: public for the check, 127.0.0.1 for the connection). Here the
backend resolves the name once, judges every address of that answer, and connects to those very
addresses. Only the TCP connection is made here: TLS (the SNI and the certificate check) and the
Host header still use the URL's name, as httpx makes them.
"""

from __future__ import annotations

import socket
import ssl
from typing import Callable, Iterable

import httpcore
import httpx

from shared.webhooks.addresses import Address, is_public, parse

# httpx's own defaults for its transport's pool
LIMITS = {"max_connections": 100, "max_keepalive_connections": 20, "keepalive_expiry": 5.0}


class NonPublicTarget(httpcore.ConnectError):
    """The receiver's name resolved to an address that is not public: nothing was connected."""

    def __init__(self, host: str, address: Address):
        super().__init__(f"{host} resolves to a non-public address ({address})")
        self.address = address


def resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (an address resolves to itself)."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


class PublicOnlyBackend(httpcore.NetworkBackend):
    """httpcore's synchronous backend, connecting only to addresses of one DNS answer, all judged."""

    def __init__(self, judge: Callable[[Address], bool] = is_public,
                 resolver: Callable[[str, int], list[str]] = resolve):
        self._judge, self._resolve = judge, resolver
        self._backend = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable | None = None) -> httpcore.NetworkStream:
        try:
            addresses = [parse(found) for found in dict.fromkeys(self._resolve(host, port))]
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
                return self._backend.connect_tcp(str(address), port, timeout=timeout, local_address=local_address,
                                                 socket_options=socket_options)
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
