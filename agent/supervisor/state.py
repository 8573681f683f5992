"""The supervisor's public value types: settings, worker states, events and snapshots.

These stay inside the supervisor process (the composition root reads them to publish camera statuses), so they
live here rather than in `agent.models`, which is for what crosses a thread or process line.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class WorkerState(enum.StrEnum):
    """Where one worker (and so each of its cameras) is in its life."""

    STARTING = "starting"  # spawned; not every camera has beaten yet
    RUNNING = "running"  # every camera has made progress at least once
    HUNG = "hung"  # a camera stopped making progress; SIGTERM sent, SIGKILL follows on the next tick
    STOPPING = "stopping"  # asked to stop (reload, retire or shutdown); killed if it overruns its grace time
    BACKOFF = "backoff"  # died unexpectedly; waiting out the backoff before the respawn
    FAILED = "failed"  # restart budget exhausted; not respawned until a reload (or the cool-off, if configured)
    CONFIG_ERROR = "config_error"  # exited 78: its configuration cannot work; not respawned until a reload
    STOPPED = "stopped"  # stopped by the supervisor's own shutdown


class EventKind(enum.StrEnum):
    STARTED = "started"
    EXITED = "exited"  # died without being asked to (crash, signal, unexpected return)
    HUNG = "hung"  # heartbeat stalled; being killed
    FAILED = "failed"  # restart budget exhausted; these cameras are given up on
    CONFIG_ERROR = "config_error"
    RETIRED = "retired"  # all its cameras were removed by a reload
    SPLIT = "split"  # budget exhausted with several cameras: halved into two workers to isolate the crashing one


@dataclass(frozen=True, slots=True)
class SupervisorEvent:
    """Something the composition root may want to publish (e.g. cameras FAILED -> `decoder_error` status)."""

    kind: EventKind
    slot: int
    camera_ids: tuple[str, ...]
    pid: int | None = None
    exitcode: int | None = None
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisorSettings:
    """How the pool is run. Defaults suit a Raspberry Pi 4 watching a dozen cameras."""

    worker_entry: str  # "package.module:function", called as f(specs, reports, heartbeat, stop) in each worker
    workers: int | None = None  # pool size; None = the CPUs this process may use
    # A camera's counter must move at least this often once it has started (frames, or reconnect waits).
    hang_timeout_s: float = 30.0
    # Before a camera's first beat: importing numpy/OpenCV/PyAV on a Pi takes ~5 s, an RTSP open up to ~20 s.
    boot_timeout_s: float = 60.0
    restart_limit: int = 5  # restarts allowed per worker ...
    restart_window_s: float = 600.0  # ... in this sliding window; then its cameras are marked FAILED
    backoff_initial_s: float = 1.0  # first respawn delay; doubles per consecutive failure
    backoff_max_s: float = 60.0
    stable_after_s: float = 120.0  # a worker that ran this long resets its backoff to the initial delay
    failed_cooloff_s: float | None = None  # if set, a FAILED worker gets a fresh budget after this long
    # A worker with several cameras that exhausts its budget is split in two (fresh budgets) rather than failing
    # them all: one corrupt stream crashing FFmpeg then ends up FAILED alone. The split workers cost memory
    # (tens of MB each), hence a cap. None = twice the pool size.
    max_workers: int | None = None
    stop_timeout_s: float = 6.0  # grace for a worker asked to stop; fits systemd's 10 s stop budget with margin
    report_pipe_bytes: int | None = None  # kernel buffer for each worker's reports; None = the default 64 KiB
    log_level: int | str | None = None  # for workers; None = the supervisor's root logger level at spawn time
    title_prefix: str = "matthan-agent"

    def __post_init__(self) -> None:
        module, sep, func = self.worker_entry.partition(":")
        if not (module and sep and func):
            raise ValueError(f"worker_entry {self.worker_entry!r} must look like 'package.module:function'")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be at least 1, not {self.workers}")
        if self.restart_limit < 0:
            raise ValueError(f"restart_limit must be >= 0, not {self.restart_limit}")
        for name in ("hang_timeout_s", "boot_timeout_s", "restart_window_s", "backoff_initial_s", "stop_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    slot: int
    state: WorkerState
    camera_ids: tuple[str, ...]
    pid: int | None
    restarts: int  # restarts spent in the current budget window
    last_exitcode: int | None


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    """The pool at one moment: every worker, and every camera's state. A camera is in its worker's state, except
    while the worker is up (STARTING or RUNNING): then each camera is STARTING until its own first beat, RUNNING
    after it."""

    workers: tuple[WorkerInfo, ...]
    cameras: Mapping[str, WorkerState]

    def count(self, state: WorkerState) -> int:
        return sum(1 for s in self.cameras.values() if s is state)
