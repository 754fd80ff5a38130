"""TLS contexts for this process's outgoing HTTPS clients (the partner SDK, webhook delivery).

Made as ``httpx`` makes its default one — the ``certifi`` bundle, or ``SSL_CERT_FILE`` /
``SSL_CERT_DIR`` when set — once per thread and kept: making a context loads the CA bundle, 15 to
60 ms of CPU on the project's machine, and a client made per call, per job run or per partner paid
that each time.

Per thread, not per process: ``httpcore`` sets the context's ALPN protocols each time it opens a
connection, and on Python 3.11 changing a context while another thread opens a connection with it
is unsafe (CPython issue 141012). A context made per thread is shared by no more threads than one
``httpx`` client of that thread already shares its own with.
"""

from __future__ import annotations

import ssl
import threading

import httpx

_made = threading.local()


def tls_context() -> ssl.SSLContext:
    """This thread's context (made on its first call, environment read then)."""
    context = getattr(_made, "context", None)
    if context is None:
        context = _made.context = httpx.create_ssl_context()
    return context
