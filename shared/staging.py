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
    replaces ``target`` by a rename (an earlier attempt there is removed first); when it raises, the
    sibling is removed, so a crash leaves at most a stray staging directory, never a half-written one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)


def write_synced(path: Path, content: bytes) -> None:
    """Write ``content`` and force it to disk before returning."""
    with open(path, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
