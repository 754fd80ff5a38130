"""Directories of files that appear whole or not at all (settlement files, published reports)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged_directory(target: Path) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``target`` to write into. When the block ends cleanly it
    replaces ``target`` by a rename, synced to disk (an earlier attempt there is renamed aside first
    and removed after the new one is in place); when it raises, the sibling is removed, so a crash
    leaves at most a stray staging directory, never a half-written one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    earlier = None
    try:
        yield staging
        sync_directory(staging)  # its files' names, before the directory takes the target's place
        if target.exists():  # moved aside, not removed in place: a reader never finds it gone for long
            earlier = Path(tempfile.mkdtemp(prefix=f".{target.name}-replaced-", dir=target.parent))
            os.replace(target, earlier / target.name)
        os.replace(staging, target)
    except BaseException:
        # whatever failed (the block, a sync, a full disk making the aside directory, a rename), the old
        # directory goes back where it was and no copy is left behind: a full disk kept the whole staged
        # set of each attempt, taking the space the next run needs (until 2026-12-07)
        if earlier is not None and (earlier / target.name).exists() and not target.exists():
            os.replace(earlier / target.name, target)
        if earlier is not None:
            shutil.rmtree(earlier, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        sync_directory(target.parent)  # the rename survives a crash, as the database's commit that follows does
    finally:
        if earlier is not None:
            shutil.rmtree(earlier, ignore_errors=True)


def sync_directory(path: Path) -> None:
    """Force a directory's entries (names created, renamed or removed in it) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced(path: Path, content: bytes) -> None:
    """Write ``content`` and force it to disk before returning."""
    with open(path, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
