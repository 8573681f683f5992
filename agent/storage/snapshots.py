"""Event snapshots (JPEG files) in the state directory, under a byte quota, oldest deleted first.

Writes are atomic (a temporary file in the same directory, fsync, rename), so a power cut on a Pi leaves either
the old file or the new one, never half a JPEG that the relay would then publish. The quota is enforced on every
write from an in-memory index built once at start, so a write costs no directory scan.

Several camera threads in one worker process share a store; a lock guards the index. Different processes use
different stores only through distinct file names (event ids are UUIDs), and each enforces the quota on what it
sees at start plus what it writes, which keeps the total within the quota plus one worker's headroom.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

from agent.atomicfile import is_leftover, write_atomic

log = logging.getLogger(__name__)

DEFAULT_QUOTA_BYTES = 200 * 1024 * 1024  # ~4,000 snapshots of 50 KB: weeks of events on a 16 GB SD card
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class SnapshotStore:
    """`put(name, jpeg) -> path`; files are named `<name>.jpg`, names made safe for any file system."""

    def __init__(self, directory: str | os.PathLike[str], *, quota_bytes: int = DEFAULT_QUOTA_BYTES) -> None:
        if quota_bytes <= 0:
            raise ValueError(f"quota_bytes must be > 0, got {quota_bytes}")
        self.directory = Path(directory)
        self.quota_bytes = quota_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._files: dict[str, tuple[float, int]] = {}  # name -> (mtime, size)
        self.evicted = 0
        for entry in os.scandir(self.directory):
            if entry.is_file() and entry.name.endswith(".jpg"):
                st = entry.stat()
                self._files[entry.name] = (st.st_mtime, st.st_size)
            elif entry.is_file() and is_leftover(entry.name):
                os.unlink(entry.path)  # a write interrupted by a crash
        with self._lock:
            self._enforce(0)

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return sum(size for _, size in self._files.values())

    def path_for(self, name: str) -> Path:
        return self.directory / (_SAFE.sub("_", name) + ".jpg")

    def put(self, name: str, jpeg: bytes) -> Path:
        """Write (or replace) the snapshot `name` atomically and evict the oldest files beyond the quota."""
        if len(jpeg) > self.quota_bytes:
            raise ValueError(f"snapshot of {len(jpeg)} bytes exceeds the whole quota of {self.quota_bytes} bytes")
        path = self.path_for(name)
        write_atomic(path, jpeg)
        with self._lock:
            self._files.pop(path.name, None)
            self._enforce(len(jpeg))
            self._files[path.name] = (path.stat().st_mtime, len(jpeg))
        return path

    def _enforce(self, incoming: int) -> None:
        used = sum(size for _, size in self._files.values())
        if used + incoming <= self.quota_bytes:
            return
        for name, (_, size) in sorted(self._files.items(), key=lambda kv: kv[1][0]):
            if used + incoming <= self.quota_bytes:
                break
            (self.directory / name).unlink(missing_ok=True)  # a technician may have deleted it already
            del self._files[name]
            used -= size
            self.evicted += 1
        log.debug("snapshot quota: %d files evicted so far", self.evicted)
