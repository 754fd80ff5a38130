"""A receiver's error page is read at most ``ANSWER_BYTES`` as it comes over the wire: the job asks for
no compression, and a page compressed anyway (a gzip bomb: a few hundred kB that inflate to hundreds
of MB) is never inflated beyond what is kept (docs/operations.md, "the first 4 KB are read")."""

from __future__ import annotations

import tracemalloc
import zlib

import pytest

from shared.webhooks.delivery import ANSWER_BYTES, MAX_ERROR, deliver_due, delivery_detail
from tests.factories import make_member, make_partner
from tests.webhooks.conftest import deliveries, register

INFLATED = 200 * 1024 * 1024  # what the bomb inflates to


def _bomb(encoding: str) -> bytes:
    """``upstream exploded`` then NUL bytes up to ``INFLATED``, gzip or zlib (HTTP's deflate), made a
    MB at a time."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    parts, zeros = [packer.compress(b"upstream exploded ")], bytes(1024 * 1024)
    parts += [packer.compress(zeros) for _ in range(INFLATED // len(zeros))]
    return b"".join(parts) + packer.flush()


def _answer_compressed(receiver, status: int, body: bytes, encoding: str) -> None:
    handler = receiver.server.RequestHandlerClass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        receiver.requests.append({"path": self.path, "headers": dict(self.headers)})
        self.send_response(status)
        self.send_header("content-encoding", encoding)  # whatever was asked for
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:  # the sender read what it keeps and hung up
            pass

    handler.do_POST = do_POST


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_error_page_is_never_inflated_beyond_what_is_kept(network, receiver, encoding):
    shops = [make_partner(network, f"Shop{n}") for n in range(3)]
    for shop in shops:
        register(network, receiver, shop)
        network.earn(shop, make_member(network, shop), f"e-{shop}", points=5)
    bomb = _bomb(encoding)
    assert len(bomb) < 1024 * 1024  # a small answer on the wire
    _answer_compressed(receiver, 500, bomb, encoding)
    tracemalloc.start()
    try:
        counts = deliver_due(network)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert counts["retrying"] == 3
    assert peak < 8 * 1024 * 1024, f"the job allocated {peak / 1e6:.0f} MB for three error pages"
    # the job asked for the page as it is: no compression
    asked = [{k.lower(): v for k, v in r["headers"].items()}.get("accept-encoding") for r in receiver.requests]
    assert asked == ["identity"] * 3
    for row in deliveries(network):
        assert row.last_status_code == 500 and len(row.last_error) <= MAX_ERROR
        assert row.last_error.startswith("upstream exploded")  # the start of the page, inflated only that far
        [attempt] = network.tx(lambda tx: delivery_detail(tx, row.id), readonly=True)["attempt_log"]
        assert attempt["error"] == row.last_error
    assert ANSWER_BYTES <= 64 * 1024
