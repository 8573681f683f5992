"""The credential budget kept in the state dir, so that neither a daemon restart nor a `discover` run gives a camera
three fresh attempts.

The file (`auth_budget.json`) maps each camera (`policy.auth_key`: endpoint uuid, else host:port) to the wall-clock
times of its recent credential attempts: wall clock, because the count must survive a reboot. It holds no
credential and stays small: a few cameras, at most 3 times each, expired entries dropped on every write.

SD cards wear, so it is written only when a camera rejects a credential, and once more when a camera that had
rejections accepts one (to clear them); never in the steady state. Writes are atomic (temporary file, fsync,
rename, fsync of the directory), like the inventory's, so a power cut leaves the old or the new file.

Several processes may share it (the daemon and `matthan-agent discover --state-dir`): before each decision the file
is re-read if it changed (one stat(), no write), and a write merges what is on disk first. Two processes writing in
the same millisecond could still lose one time stamp; the budget then errs by one attempt.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from agent.atomicfile import write_atomic
from agent.discovery.policy import AuthBudget
from agent.discovery.settings import AUTH_ATTEMPTS, AUTH_WINDOW_S, DiscoverySettings

log = logging.getLogger(__name__)

AUTH_BUDGET_FILE = "auth_budget.json"
FORMAT_VERSION = 1


class FileAuthBudget(AuthBudget):
    """An `AuthBudget` persisted at `path`. Used from one asyncio loop per process (the ONVIF thread's)."""

    def __init__(self, path: str | os.PathLike[str], attempts: int = AUTH_ATTEMPTS, window_s: float = AUTH_WINDOW_S,
                 *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(attempts, window_s, clock=clock)
        self.path = Path(path)
        self.write_errors = 0  # failed writes, for health; the budget then holds in memory only
        self._seen: tuple[int, int, int] | None = None  # (inode, mtime, size) of the file last read or written
        self._on_disk: set[str] = set()  # keys the file holds
        self._sync()

    # -- decisions: the file's latest content first ------------------------------------------------------------
    def remaining(self, key: str, now: float | None = None) -> int:
        self._sync()
        return super().remaining(key, now)

    def take(self, key: str, now: float | None = None) -> bool:
        self._sync()
        return super().take(key, now)

    def retry_after_s(self, key: str, now: float | None = None) -> float:
        self._sync()
        return super().retry_after_s(key, now)

    def failed(self, key: str) -> None:
        self._sync()
        self._write()

    def succeeded(self, key: str) -> None:
        self._sync()
        super().succeeded(key)
        if key in self._on_disk:
            self._write()

    # -- the file ----------------------------------------------------------------------------------------------
    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _sync(self) -> None:
        """Merge the file into memory if it changed since we last read or wrote it."""
        signature = self._signature()
        if signature == self._seen:
            return
        self._seen = signature
        disk = self._read() if signature is not None else {}
        self._on_disk = set(disk)
        for key, stamps in disk.items():  # a multiset union: what either side saw, each attempt once
            self._tries[key] = sorted((Counter(self._tries.get(key, ())) | Counter(stamps)).elements())

    def _read(self) -> dict[str, list[float]]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {str(key): [float(t) for t in stamps] for key, stamps in raw["cameras"].items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("credential budget %s is unreadable (%s); it is rewritten at the next rejected login",
                        self.path, exc)
            return {}

    def _write(self) -> None:
        now = self._clock()
        cameras = {key: recent for key in sorted(self._tries) if (recent := self._recent(key, now))}
        doc = {"version": FORMAT_VERSION, "window_s": self.window_s, "cameras": cameras}
        data = json.dumps(doc, indent=1, sort_keys=True).encode("utf-8")
        try:
            write_atomic(self.path, data)
        except OSError as exc:  # disk full or read-only state dir: the budget still holds in memory
            self.write_errors += 1
            log.error("cannot save the credential budget %s (%s); a restart will forget recent rejected logins",
                      self.path, exc.strerror or exc)
            return
        self._on_disk = set(cameras)
        self._seen = self._signature()


def budget_for(settings: DiscoverySettings, state_dir: str | os.PathLike[str] | None) -> AuthBudget:
    """The credential budget to use: kept in `state_dir` when there is one, else in memory only."""
    if state_dir is None:
        return AuthBudget(settings.auth_attempts, settings.auth_window_s)
    return FileAuthBudget(Path(state_dir) / AUTH_BUDGET_FILE, settings.auth_attempts, settings.auth_window_s)
