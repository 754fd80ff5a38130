"""The one TLS context this process's outgoing HTTPS clients share (the partner SDK, webhook delivery).

Made once, as ``httpx`` makes its default one: the ``certifi`` bundle, or ``SSL_CERT_FILE`` /
``SSL_CERT_DIR`` when set at the first use. Making a context loads the CA bundle — 15 to 60 ms of
CPU on the project's machine — so a client made per call, per thread or per job run paid that each
time; one shared context costs it once. An ``ssl.SSLContext`` may be shared between threads.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()
