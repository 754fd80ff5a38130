"""Network.until_done ends a run of batches that do nothing: also when they read work no batch can do
in alternating subsets (ties of the due order under LIMIT: PostgreSQL need not return the same rows among
equal keys). Found in review."""

from __future__ import annotations

import pytest

from shared.jobs.batches import Batch


class Looped(Exception):
    pass


def test_empty_batches_reading_alternating_work_end_the_run(network):
    calls = [0]

    def batch(tx):
        calls[0] += 1
        if calls[0] > 50:
            raise Looped(f"{calls[0]} batches, none did anything")
        return Batch(0, frozenset({"a"}) if calls[0] % 2 else frozenset({"b"}))

    try:
        network.until_done(batch)
    except Looped as exc:
        pytest.fail(f"until_done did not end: {exc}")
    assert calls[0] <= 4
