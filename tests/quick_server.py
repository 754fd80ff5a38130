"""uvicorn for the tests' servers in a thread: stopped in about a tenth of a second, not two.

uvicorn looks at ``should_exit`` every 100 ms, then waits 100 ms more for its connections; about 600
tests stop a server each, twice in CI (one pass per database). Here it looks every 5 ms; the rest of
its shutdown is uvicorn's own."""

from __future__ import annotations

import asyncio

import uvicorn

# how often a test's HTTP receiver (http.server) looks whether it is asked to stop: its default, 0.5 s,
# is what each ``shutdown()`` waits on average
POLL_INTERVAL = 0.01


class QuickServer(uvicorn.Server):
    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):  # as uvicorn's loop, at a shorter tick
            counter = (counter + 1) % 864000
            await asyncio.sleep(0.005)
