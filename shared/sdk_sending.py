"""The partner SDK's senders: the threads its calls send on, so that a caller can stop waiting for an
answer's status line and headers at its deadline (httpx bounds each read of them, not their sum).

``concurrent.futures.ThreadPoolExecutor`` does not fit: its threads are a fixed number, so sends stuck on a
broken proxy after their callers gave up took every thread and every later call waited in its queue and
timed out unsent; and they are joined at interpreter exit, so a script whose call timed out could not end.
These threads are daemons, one is started whenever none is idle (a stuck send never delays another call),
idle ones are reused (about 20 µs a call, not a thread's start), and a send whose caller gave up before it
began is never sent.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable


class GaveUp(Exception):
    """The caller's deadline passed before the send ended: it is abandoned (closed unread if it ends)."""


class Sending:
    """One send: run on a sender thread, waited for by its caller until a deadline."""

    def __init__(self, send: Callable[[], Any], on_abandoned: Callable[[Any], None]):
        self._send = send
        self._on_abandoned = on_abandoned
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._abandoned = False
        self._result: Any = None
        self._error: BaseException | None = None

    def run(self) -> None:
        with self._lock:
            if self._abandoned:  # its caller gave up before a thread took it: never sent
                return
        try:
            self._result = self._send()
        except BaseException as error:  # noqa: BLE001 - handed to the caller, which raises it
            self._error = error
        self._send = None  # it holds the client: a client dropped without close() must be freed
        with self._lock:
            abandoned = self._abandoned
            self._done.set()
        if abandoned and self._error is None:
            self._on_abandoned(self._result)

    def wait(self, timeout: float) -> Any:
        """The send's result (its exception raised), or GaveUp once ``timeout`` seconds have passed. A wait
        interrupted (Ctrl-C) abandons the send too: its answer is closed, its connection not kept for good."""
        try:
            done = self._done.wait(max(0.0, timeout))
        except BaseException:
            self.abandon()
            raise
        if not done:
            with self._lock:
                if not self._done.is_set():  # else it ended just now: its answer is the caller's after all
                    self._abandoned = True
                    raise GaveUp
        if self._error is not None:
            raise self._error
        return self._result

    def abandon(self) -> None:
        """Give the send up whatever it has done: an answer it has, or gets, is closed unread."""
        with self._lock:
            ended = self._done.is_set()
            self._abandoned = True
        if ended and self._error is None:
            self._on_abandoned(self._result)


class Senders:
    """A client's daemon sender threads, started as needed and reused while idle."""

    def __init__(self, name: str):
        self._name = name
        self._jobs: queue.SimpleQueue[Sending | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._started = 0
        self._closed = False

    def submit(self, send: Callable[[], Any], on_abandoned: Callable[[Any], None]) -> Sending:
        sending = Sending(send, on_abandoned)
        with self._lock:
            if self._closed:
                raise RuntimeError("the client is closed: make a new one")
            start = self._idle == 0
            if start:
                self._started += 1
                number = self._started
            else:
                self._idle -= 1  # an idle thread, waiting on the queue, takes it
        self._jobs.put(sending)
        if start:
            try:
                threading.Thread(target=self._work, name=f"{self._name}-{number}", daemon=True).start()
            except BaseException:  # the system's limit on threads: this call fails, and is never sent later
                sending.abandon()
                raise
        return sending

    def _work(self) -> None:
        while True:
            sending = self._jobs.get()
            if sending is None:
                return
            sending.run()
            sending = None  # an idle thread holds no send (nor, through it, the client)
            with self._lock:
                if self._closed:
                    return
                self._idle += 1

    def close(self) -> None:
        """Idle threads end now; a send still running (stuck on a broken proxy) ends with its connection."""
        with self._lock:
            self._closed, idle, self._idle = True, self._idle, 0
        for _ in range(idle):
            self._jobs.put(None)
