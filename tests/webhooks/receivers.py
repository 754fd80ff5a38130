"""A slow webhook receiver on 127.0.0.1, for the tests that a slow partner holds up nobody else: how it
answers is the test's own (``answer``), the server around it is this one."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.quick_server import POLL_INTERVAL


class SlowReceiver:
    """Reads every POST's body, then lets ``answer(handler)`` write the answer; each request in a thread of
    its own, so that slow answers overlap."""

    def __init__(self, answer: Callable[[BaseHTTPRequestHandler], None]):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                answer(self)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(POLL_INTERVAL,), daemon=True).start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/slow"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def slow_receiver(answer: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[SlowReceiver]:
    """A SlowReceiver answering with ``answer``, closed on leaving."""
    receiver = SlowReceiver(answer)
    try:
        yield receiver
    finally:
        receiver.close()
