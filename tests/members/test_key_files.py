"""Keys generated into the data directory on first use: threads (or processes) starting at once
all end up with the same keys, and none of them reads a half-written key file."""

from __future__ import annotations

import threading

from cryptography.hazmat.primitives import serialization

from shared.config import Settings
from shared.keys import load_pii_keyring, load_signing_key


def _at_once(count: int, work) -> list:
    barrier, results = threading.Barrier(count), []

    def run():
        barrier.wait()
        try:
            results.append(work())
        except Exception as error:  # noqa: BLE001 - every failure is reported below
            results.append(error)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_first_start_in_many_threads_makes_one_personal_data_keyring(tmp_path):
    for attempt in range(20):
        settings = Settings(data_dir=tmp_path / f"data{attempt}")
        results = _at_once(8, lambda: load_pii_keyring(settings))
        assert not [r for r in results if isinstance(r, Exception)], results
        assert len({(active, tuple(sorted(keys))) for active, keys in results}) == 1
        key_dir = settings.data_dir / "keys"
        assert [p.name for p in key_dir.iterdir()] == ["pii-keys.json"]  # no staging file left behind
        assert (key_dir / "pii-keys.json").stat().st_mode & 0o077 == 0
        # the directory is owner-only too (it was made 0755: the key files' names and times for anyone)
        assert key_dir.stat().st_mode & 0o077 == 0


def test_first_start_in_many_threads_makes_one_signing_key(tmp_path):
    for attempt in range(20):
        settings = Settings(data_dir=tmp_path / f"data{attempt}")
        results = _at_once(8, lambda: load_signing_key(settings))
        assert not [r for r in results if isinstance(r, Exception)], results
        public = {r.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
                  for r in results}
        assert len(public) == 1
