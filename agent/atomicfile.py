"""Replace a file so that readers see the old content or the new, never a mix — also across a power cut.

One helper for every small file the agent rewrites (inventory, credential budget, snapshots, the state file): a
temporary file in the same directory, renamed over the target. `durable=True` also fsyncs the file and its
directory, so the new content survives a power cut; files that are worthless after one (the state file) skip that
and spare the SD card.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

TEMP_SUFFIX = ".tmp"  # temporary files are ".<name>.<random>.tmp" beside the target


def is_leftover(name: str) -> bool:
    """A temporary file of a write that a crash interrupted (safe to delete at start-up)."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def write_atomic(path: Path, data: bytes, *, durable: bool = True, mode: int | None = None) -> None:
    """Write `data` to `path` atomically; `mode` (e.g. 0o644) is set before the rename, when given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (a directory that cannot be opened, e.g. on some FUSE mounts, is skipped)."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
