"""Two units of work made to overlap at a chosen point, the same way on every run.

The first unit runs in a thread until it reaches its pause (right after a patched function
returns, or a call in the unit itself) and waits there, its transaction open. The second then
starts and is given a second to finish on its own: on PostgreSQL a lock the first holds makes it
wait, on SQLite the one writer does. Then the pause is released and both must end within ten
seconds (daemon threads: a regression fails the test, it never hangs the run).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

FIRST = "first"


class Pause:
    """Where the first unit waits; calls from any other thread pass straight through."""

    def __init__(self) -> None:
        self.reached, self.released = threading.Event(), threading.Event()

    def __call__(self) -> None:
        if threading.current_thread().name == FIRST:
            self.reached.set()
            self.released.wait(10)

    def after(self, monkeypatch, owner: Any, name: str) -> Pause:
        """Pause the first unit right after ``owner.name`` returns (patched for the test)."""
        original = getattr(owner, name)

        def paused(*args, **kwargs):
            result = original(*args, **kwargs)
            self()
            return result

        monkeypatch.setattr(owner, name, paused)
        return self


@dataclass(frozen=True)
class Overlap:
    first: Any  # what each unit returned, or the exception it raised
    second: Any
    second_waited: bool  # still running a second after it began: it waited for the first


def overlap(first: Callable[[], Any], second: Callable[[], Any], pause: Pause) -> Overlap:
    outcomes: dict[str, Any] = {}

    def run(name: str, unit: Callable[[], Any]) -> None:
        try:
            outcomes[name] = unit()
        except Exception as exc:  # the test asserts on it
            outcomes[name] = exc

    one = threading.Thread(target=run, args=(FIRST, first), name=FIRST, daemon=True)
    one.start()
    assert pause.reached.wait(10), "the first unit never reached its pause"
    two = threading.Thread(target=run, args=("second", second), name="second", daemon=True)
    two.start()
    two.join(1.0)
    waited = two.is_alive()
    pause.released.set()
    one.join(10)
    two.join(10)
    assert not one.is_alive() and not two.is_alive(), "a unit did not end"
    return Overlap(outcomes[FIRST], outcomes["second"], waited)
