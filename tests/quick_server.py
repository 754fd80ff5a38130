"""uvicorn for the tests' servers in a thread, stopped in a few milliseconds rather than a fifth of a second.

uvicorn looks at ``should_exit`` every 100 ms, then gives its connections a fixed 100 ms to take the
shutdown before it waits for them; about 650 tests stop a server each, twice in CI (one pass per
database). Here it looks every 5 ms and waits for exactly as long as its connections and tasks take.
The order of the shutdown is uvicorn's own (``Server.shutdown``)."""

from __future__ import annotations

import asyncio

import uvicorn

# how often a test's HTTP receiver (http.server) looks whether it is asked to stop: its default, 0.5 s,
# is what each ``shutdown()`` waited on average
POLL_INTERVAL = 0.01
_TICK = 0.005


class QuickServer(uvicorn.Server):
    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):  # as uvicorn's loop, at a shorter tick
            counter = (counter + 1) % 864000
            await asyncio.sleep(_TICK)

    async def shutdown(self, sockets=None) -> None:
        for server in self.servers:  # stop accepting
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):  # idle ones close, busy ones finish first
            connection.shutdown()
        while (self.server_state.connections or self.server_state.tasks) and not self.force_exit:
            await asyncio.sleep(_TICK)
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()
