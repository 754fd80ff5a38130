"""Directories that appear whole (settlement files, published reports): a replacement puts the new
directory in place before the old one is deleted, and leaves nothing else behind."""

from __future__ import annotations

import pytest

from shared import staging
from shared.staging import staged_directory


def _write(target, text):
    with staged_directory(target) as directory:
        (directory / "statement.csv").write_text(text)


def test_the_old_directory_is_deleted_only_once_the_new_one_is_in_place(tmp_path, monkeypatch):
    target = tmp_path / "2026-11-22"
    _write(target, "first")
    seen = []
    real_rmtree = staging.shutil.rmtree

    def rmtree(path, *args, **kwargs):
        seen.append((target / "statement.csv").read_text())  # a reader at this moment
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(staging.shutil, "rmtree", rmtree)
    _write(target, "second")
    assert seen == ["second"]
    assert (target / "statement.csv").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-11-22"]


def test_a_failed_replacement_keeps_the_old_directory_and_leaves_no_staging(tmp_path):
    target = tmp_path / "2026-11-22"
    _write(target, "first")
    with pytest.raises(RuntimeError):
        with staged_directory(target) as directory:
            (directory / "statement.csv").write_text("half")
            raise RuntimeError("crash")
    assert (target / "statement.csv").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-11-22"]


def test_the_new_directory_and_its_parent_are_synced(tmp_path, monkeypatch):
    synced = []
    real = staging.sync_directory
    monkeypatch.setattr(staging, "sync_directory", lambda path: (synced.append(path), real(path)))
    target = tmp_path / "reports" / "2026-11"
    _write(target, "first")
    assert target.parent in synced and len(synced) == 2


def test_a_failed_rename_puts_the_old_directory_back(tmp_path, monkeypatch):
    target = tmp_path / "2026-11-22"
    _write(target, "first")
    real = staging.os.replace

    def replace(source, destination):
        if str(source).startswith(str(tmp_path / ".2026-11-22-")) and "replaced" not in str(source):
            raise OSError("disk full")  # the new directory's rename into place
        return real(source, destination)

    monkeypatch.setattr(staging.os, "replace", replace)
    with pytest.raises(OSError):
        _write(target, "second")
    assert (target / "statement.csv").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-11-22"]


@pytest.mark.parametrize("failing", ["sync of the staged directory", "aside directory", "move aside",
                                     "sync of the parent"])
def test_a_full_disk_at_any_step_leaves_no_copy_behind(tmp_path, monkeypatch, failing):
    """Found by the file-system faults review: a full disk or an I/O error between the steps left a whole
    staged copy (or the old set moved aside) in the parent directory, never removed, taking the space the
    next run needed. Now the old directory is in place (or the new one, once renamed) and nothing else."""
    import errno

    target = tmp_path / "2026-11-22"
    _write(target, "first")
    real_sync, real_mkdtemp, real_replace = staging.sync_directory, staging.tempfile.mkdtemp, staging.os.replace
    full = OSError(errno.ENOSPC, "No space left on device")

    def sync(path):
        if (failing == "sync of the staged directory" and path.name.startswith(".2026-11-22-")) or (
                failing == "sync of the parent" and path == tmp_path):
            raise full
        return real_sync(path)

    def mkdtemp(*args, prefix="", **kwargs):
        if failing == "aside directory" and "replaced" in prefix:
            raise full
        return real_mkdtemp(*args, prefix=prefix, **kwargs)

    def replace(source, destination):
        if failing == "move aside" and source == target:
            raise full
        return real_replace(source, destination)

    monkeypatch.setattr(staging, "sync_directory", sync)
    monkeypatch.setattr(staging.tempfile, "mkdtemp", mkdtemp)
    monkeypatch.setattr(staging.os, "replace", replace)
    with pytest.raises(OSError):
        _write(target, "second")
    assert (target / "statement.csv").read_text() == ("second" if failing == "sync of the parent" else "first")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-11-22"]
