"""What a camera worker process shares with the supervisor: a heartbeat, a report pipe and a stop pipe.

Everything here is chosen to survive a worker that dies at the worst moment (a segfault in FFmpeg, a SIGKILL for
a hung decoder) without hurting the supervisor or the other workers:

- The heartbeat is plain shared memory (one 64-bit counter per camera). The supervisor reads it without asking
  the worker and without a lock, so a worker killed mid-update cannot leave a lock held.
- Reports travel over a private pipe per worker, written with non-blocking, single `write()` calls no larger than
  `PIPE_BUF`, which the kernel makes atomic: a killed writer cannot leave half a message, a full pipe drops the
  report instead of blocking the frame loop, and the supervisor sees end-of-file when the worker is gone.
  (`multiprocessing.Queue` is deliberately not used: its feeder thread and its lock shared by all writers are
  exactly what a crashing worker corrupts.)
- Stopping is the supervisor closing its end of a control pipe; the worker sees end-of-file. A supervisor that
  dies for any reason therefore stops its workers too.
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger(__name__)

# Linux makes a pipe write of at most PIPE_BUF bytes atomic; larger writes could be torn by a kill.
MAX_REPORT_BYTES = select.PIPE_BUF - 4  # minus the 4-byte length header that Connection.recv_bytes expects
# A drained pipe is read in one tick; this cap keeps one flooding worker from starving the loop (~1000 reports).
MAX_REPORTS_PER_DRAIN = 1000
IDLE_BEAT_S = 1.0  # beat period of a camera waiting to reconnect; far below any sensible hang timeout
_HEADER = struct.Struct("!i")  # the framing multiprocessing.connection uses, so recv_bytes() can read it


class Heartbeat:
    """Per-camera progress counters in shared memory: the worker bumps, the supervisor reads.

    Contract for workers: call `beat(camera_id)` after every frame processed, and while a camera is legitimately
    idle (waiting to reconnect) wait with `idle_wait()`, which beats once a second from the waiting thread itself.
    Never beat from a timer thread: the counter must stop when the camera's thread is stuck. Increments from
    several threads are not locked; a lost increment is harmless because the supervisor only asks "did it move".
    """

    def __init__(self, counters: Any, camera_ids: Sequence[str]) -> None:
        if len(counters) != len(camera_ids):
            raise ValueError(f"{len(counters)} counters for {len(camera_ids)} cameras")
        self._counters = counters
        self._camera_ids = tuple(camera_ids)
        self._index = {cid: i for i, cid in enumerate(self._camera_ids)}

    @property
    def camera_ids(self) -> tuple[str, ...]:
        return self._camera_ids

    def beat(self, camera_id: str | None = None, frames: int = 1) -> None:
        """Record progress for one camera, or for every camera of this worker when `camera_id` is None."""
        if camera_id is None:
            for i in range(len(self._camera_ids)):
                self._counters[i] += frames
            return
        self._counters[self._index[camera_id]] += frames

    def idle_wait(self, camera_id: str, stop: threading.Event, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for `stop`, beating once per `IDLE_BEAT_S`; True if `stop` was set.

        For a camera thread that is legitimately idle (waiting out a reconnect backoff): it shows it is not stuck
        without pretending to process frames. Use it instead of `stop.wait()` in such waits.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            self.beat(camera_id)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return stop.is_set()
            if stop.wait(min(IDLE_BEAT_S, remaining)):
                return True

    def read(self) -> tuple[int, ...]:
        """The counters, in `camera_ids` order (supervisor side)."""
        return tuple(self._counters[:])


class ReportSink:
    """The worker's end of its report pipe. `put()` never blocks: when the pipe is full the report is dropped.

    Reports are cumulative (see `agent.models.CameraReport`), so a dropped report loses nothing the next one does
    not carry; `dropped` counts them so the worker can say so.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._nonblocking = False
        self.dropped = 0
        self.sent = 0

    def put(self, report: Any) -> bool:
        """Send one report; False if it was dropped (pipe full, supervisor gone, or report too large)."""
        payload = pickle.dumps(report, protocol=pickle.HIGHEST_PROTOCOL)
        if len(payload) > MAX_REPORT_BYTES:
            log.warning("report of %d bytes exceeds %d and was dropped", len(payload), MAX_REPORT_BYTES)
            self.dropped += 1
            return False
        fd = self._conn.fileno()
        if not self._nonblocking:
            os.set_blocking(fd, False)
            self._nonblocking = True
        try:
            os.write(fd, _HEADER.pack(len(payload)) + payload)
        except (BlockingIOError, BrokenPipeError):
            self.dropped += 1
            return False
        self.sent += 1
        return True


class ReportReader:
    """The supervisor's end of one worker's report pipe."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.closed = False

    def drain(self, limit: int = MAX_REPORTS_PER_DRAIN) -> Iterator[Any]:
        """Yield the reports waiting now (at most `limit`), without blocking; notes end-of-file."""
        for _ in range(limit):
            if self.closed:
                return
            try:
                if not self._conn.poll(0):
                    return
                data = self._conn.recv_bytes()
            except (EOFError, OSError):
                self.close()
                return
            yield pickle.loads(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._conn.close()
