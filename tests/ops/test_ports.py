"""A free port for a server started later: below the kernel's ephemeral range, where outgoing
connections never take a port, and free when chosen."""

from __future__ import annotations

import socket

from shared import ports


def test_a_free_port_lies_below_the_ephemeral_range_and_can_be_bound():
    low, high = ports.ephemeral_range()
    assert low <= high
    for _ in range(20):
        port = ports.free_port()
        assert ports.LOWEST <= port < low
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))


def test_a_port_in_use_is_never_chosen(monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        busy = taken.getsockname()[1]
        picks = iter([busy, busy, busy + 1 if busy + 1 < 65536 else busy - 1])

        class Draw:
            def randrange(self, start, stop):
                return next(picks)

        monkeypatch.setattr(ports.random, "SystemRandom", Draw)
        monkeypatch.setattr(ports, "ephemeral_range", lambda: (65535, 65535))
        monkeypatch.setattr(ports, "LOWEST", 1024)
        assert ports.free_port() != busy


def test_without_room_below_the_range_the_kernel_chooses(monkeypatch):
    monkeypatch.setattr(ports, "ephemeral_range", lambda: (ports.LOWEST, 60999))
    port = ports.free_port()
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
