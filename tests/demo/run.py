"""A `matthan-agent demo` subprocess for the tests: output read by a thread, descendants sampled while it runs.

Sampling the process tree during the run is what lets a test prove afterwards that nothing the demo started (the
broker, the agent, its camera workers, the RTSP host) is left: each pid is remembered with its start time, so a
pid reused by an unrelated process is not mistaken for a leftover.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

PIDS_LINE = re.compile(r"^demo: pids broker=(\d+) agent=(\d+) rtsp-host=([\d,]+)")
SNAPSHOT_IN_LINE = re.compile(r"snapshot (\S+\.jpg)")
SAMPLE_EVERY_S = 0.5  # process-tree sampling period: workers live for the whole run, so this sees them all


class DemoRun:
    def __init__(self, args: Sequence[str], demo_dir: Path, *, env: dict[str, str] | None = None) -> None:
        self.dir = demo_dir
        self.lines: list[str] = []
        self.seen: dict[int, float] = {}  # pid -> create_time of every descendant ever sampled
        self._cond = threading.Condition()
        self._done = threading.Event()
        env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        self.proc = subprocess.Popen([sys.executable, "-m", "agent", "demo", *args, "--dir", str(demo_dir)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                     start_new_session=True)
        self._threads = [threading.Thread(target=self._read, daemon=True),
                         threading.Thread(target=self._sample, daemon=True)]
        for t in self._threads:
            t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        self._done.set()
        with self._cond:
            self._cond.notify_all()

    def _sample(self) -> None:
        try:
            root = psutil.Process(self.proc.pid)
        except psutil.NoSuchProcess:
            return
        while not self._done.wait(SAMPLE_EVERY_S):
            with contextlib.suppress(psutil.Error):
                for child in root.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        self.seen.setdefault(child.pid, child.create_time())

    @property
    def text(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for(self, predicate: Callable[[list[str]], bool], timeout: float) -> bool:
        """True once `predicate(lines)` holds; False at the deadline or when the demo's output ended first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or self._done.is_set():
                    return predicate(self.lines)
                self._cond.wait(left)
            return True

    def finish(self, timeout: float) -> int:
        rc = self.proc.wait(timeout)
        self._done.wait(10)
        return rc

    def kill(self) -> None:
        """Finalizer: whatever state the test left, nothing of this run survives it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in self.seen:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

    # -- what the output says -----------------------------------------------------------------------------------
    def reported_pids(self) -> list[int]:
        for line in self.lines:
            m = PIDS_LINE.match(line)
            if m:
                return [int(m.group(1)), int(m.group(2)), *(int(p) for p in m.group(3).split(","))]
        return []

    def snapshots(self) -> list[Path]:
        return [Path(m.group(1)) for line in self.lines if "motion START" in line
                for m in [SNAPSHOT_IN_LINE.search(line)] if m]

    def survivors(self, deadline_s: float = 10.0) -> list[str]:
        """Descendants (and reported pids) still alive after the deadline, described for the failure message."""
        watched = dict(self.seen)
        for pid in self.reported_pids():
            watched.setdefault(pid, 0.0)
        deadline = time.monotonic() + deadline_s
        while True:
            alive = []
            for pid, created in watched.items():
                with contextlib.suppress(psutil.Error):
                    p = psutil.Process(pid)
                    if (not created or abs(p.create_time() - created) < 0.01) and p.status() != psutil.STATUS_ZOMBIE:
                        alive.append(f"{pid} {' '.join(p.cmdline())[:120]}")
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.1)  # polling process exit with a deadline


def namespaces_of(pid: int) -> list[str]:
    """Namespaces in /run/netns created by process `pid` (agent.simulator.netns names them mt-<pid>-...)."""
    try:
        return [n for n in os.listdir("/run/netns") if n.startswith(f"mt-{pid}-")]
    except FileNotFoundError:
        return []
