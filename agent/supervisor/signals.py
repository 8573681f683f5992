"""Signals, gunicorn style: the handler only records the signal; the main loop acts on it at its next turn.

The handler appends to a deque (safe: it runs in the main thread between bytecodes) and Python's C-level handler
writes a byte to a wake-up pipe, so a main loop sleeping in `wait()` wakes at once instead of at the next tick.
Doing real work inside a handler (logging, joining processes, taking locks) is how daemons deadlock.
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import signal
from collections.abc import Iterable
from types import FrameType, TracebackType
from typing import Any

# More pending signals than this between two ticks means something is spamming us; the oldest are dropped.
_MAX_PENDING = 64


class SignalQueue:
    """Install handlers for `signums` (main thread only); `pop_all()` returns what arrived, oldest first."""

    def __init__(self, signums: Iterable[int] = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)) -> None:
        self._signums = tuple(signums)
        self._pending: collections.deque[int] = collections.deque(maxlen=_MAX_PENDING)
        self._previous: dict[int, Any] = {}
        self._previous_wakeup = -1
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self._installed = False

    def __enter__(self) -> SignalQueue:
        self.install()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def install(self) -> None:
        self._previous_wakeup = signal.set_wakeup_fd(self._w, warn_on_full_buffer=False)
        for signum in self._signums:
            self._previous[signum] = signal.signal(signum, self._handle)
        self._installed = True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._pending.append(signum)

    def inject(self, signum: int) -> None:
        """Queue a signal as if it had arrived (for a stop requested by code, e.g. a fatal error in a thread)."""
        self._pending.append(signum)
        with contextlib.suppress(BlockingIOError):  # a full pipe means the loop is going to wake anyway
            os.write(self._w, b"\0")

    def pop_all(self) -> list[int]:
        out: list[int] = []
        while self._pending:
            out.append(self._pending.popleft())
        return out

    def wait(self, timeout_s: float) -> None:
        """Sleep up to `timeout_s`, returning early when a signal (or `inject`) arrives."""
        if self._pending:
            return
        readable, _, _ = select.select([self._r], [], [], max(0.0, timeout_s))
        if readable:
            try:
                while os.read(self._r, 512):
                    pass
            except BlockingIOError:
                pass

    def close(self) -> None:
        if self._installed:
            for signum, previous in self._previous.items():
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
            signal.set_wakeup_fd(self._previous_wakeup)
            self._installed = False
        for fd in (self._r, self._w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._r = self._w = -1
