"""A free local TCP port for a server that is started after the port is chosen.

A port the kernel hands out for ``bind(("127.0.0.1", 0))`` comes from its ephemeral range, the same
range every outgoing connection on the machine takes its local port from: between choosing the
port and the server binding it, a database connection or an HTTP client of another process could
take it. So the port is drawn at random below that range (ports there are only ever bound on
purpose) and checked free; only where there is no room below the range does the kernel choose.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10_000  # below this, well-known services' registered ports are common


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range of ports for outgoing connections (Linux's default where it cannot be read)."""
    try:
        low, high = (int(part) for part in EPHEMERAL_RANGE.read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(*, tries: int = 100) -> int:
    """A port of 127.0.0.1 that nothing is bound to now, outside the ephemeral range where it can."""
    low, _ = ephemeral_range()
    if low - 1 > LOWEST:
        draw = random.SystemRandom()
        for _ in range(tries):
            port = draw.randrange(LOWEST, low)
            if _bindable(port):
                return port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
