"""A published report set is on disk before its index says it is whole (found by the file-system faults
review): only ``index.json`` was forced to disk, so after a power cut the index and the rename could
survive while the reports under them came back empty, and publishing, which trusts a set with an index,
never wrote the set again."""

from __future__ import annotations

import os
from pathlib import Path

from shared.reports.delivery import publish_due


def test_every_file_of_a_set_is_forced_to_disk_before_its_index(network, coalition, monkeypatch):
    synced: list[str] = []
    real = os.fsync

    def recording(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    written = publish_due(network)
    assert written["cycles"], written
    root = network.settings.data_dir / "reports" / "cycles"
    for cycle in written["cycles"]:
        names = sorted(path.name for path in (root / cycle).iterdir())
        assert "index.json" in names and len(names) > 3, names
        forced = [Path(path).name for path in synced if Path(path).name in names]
        assert sorted(set(forced)) == names, (cycle, sorted(set(names) - set(forced)))
