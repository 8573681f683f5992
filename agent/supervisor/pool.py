"""The camera worker pool: spawn, watch heartbeats, kill the hung, respawn the dead within a budget, reload.

The supervisor never blocks on a worker: `tick()` (called once per main-loop turn) reads reports that are already
waiting, reads heartbeat counters from shared memory, reaps exited processes and starts those whose backoff has
run out. Only `stop()` waits, and only for a bounded time. Cameras are never moved between running workers; see
`policy.plan_reload` for how a reload places them.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from typing import Any

from agent.logsetup import SECRETS
from agent.supervisor.channels import Heartbeat, ReportReader, ReportSink
from agent.supervisor.child import EX_CONFIG, child_main
from agent.supervisor.policy import (
    CameraJob,
    RestartBudget,
    backoff_s,
    default_pool_size,
    plan_reload,
    stalled_cameras,
)
from agent.supervisor.slot import WorkerSlot, describe_exit
from agent.supervisor.state import (
    EventKind,
    PoolSnapshot,
    SupervisorEvent,
    SupervisorSettings,
    WorkerInfo,
    WorkerState,
)

log = logging.getLogger(__name__)

_F_SETPIPE_SZ = 1031  # fcntl command (Linux): resize a pipe's kernel buffer
_JOIN_AFTER_KILL_S = 2.0  # a SIGKILLed process is gone within milliseconds; this only bounds a pathological case


class Supervisor:
    """A pool of spawned worker processes, each running several cameras. Drive it from one thread."""

    def __init__(
        self,
        settings: SupervisorSettings,
        jobs: Sequence[CameraJob],
        *,
        on_report: Callable[[Any], None] | None = None,
        on_event: Callable[[SupervisorEvent], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._on_report = on_report or (lambda report: None)
        self._on_event = on_event or (lambda event: None)
        self._clock = clock
        self._ctx = multiprocessing.get_context("spawn")
        self._pool_size = settings.workers or default_pool_size()
        self._max_workers = max(self._pool_size, settings.max_workers or 2 * self._pool_size)
        self._workers: dict[int, WorkerSlot] = {}
        self._next_slot = 0
        self._started = False
        for group in plan_reload({}, jobs, self._pool_size).new:
            self._add_worker(group)

    @property
    def pool_size(self) -> int:
        return self._pool_size

    def start(self) -> None:
        """Spawn every worker. Call once, from the thread that will call `tick()`."""
        if self._started:
            raise RuntimeError("Supervisor.start() called twice")
        self._started = True
        now = self._clock()
        for w in self._workers.values():
            self._spawn(w, now)

    def tick(self) -> None:
        """One supervision pass; never blocks on a worker."""
        now = self._clock()
        for w in list(self._workers.values()):
            self._drain(w)
            if w.process is not None:
                if w.process.exitcode is not None:
                    self._reap(w, now)
                else:
                    self._watch(w, now)
            if w.respawn_at is not None and now >= w.respawn_at:
                if w.state is WorkerState.FAILED:  # the optional cool-off is over: a fresh budget
                    w.budget.reset()
                    w.failures = 0
                self._spawn(w, now)

    def set_jobs(self, jobs: Sequence[CameraJob]) -> None:
        """Apply a new job list (SIGHUP reload); workers whose cameras did not change keep running untouched.

        Workers that had given up (FAILED, CONFIG_ERROR) get a fresh budget: a reload is the operator's "try again".
        """
        now = self._clock()
        current = {s: (w.next_jobs if w.intent == "restart" else w.jobs) for s, w in self._workers.items()
                   if w.intent not in ("retire", "shutdown")}
        plan = plan_reload(current, jobs, self._pool_size)
        for slot in plan.retire:
            w = self._workers[slot]
            if w.process is None:
                del self._workers[slot]
                self._emit(EventKind.RETIRED, w, "all its cameras were removed")
            else:
                w.intent = "retire"
                self._request_stop(w, now)
        for slot, new_jobs in plan.restart.items():
            w = self._workers[slot]
            log.info("worker %d: cameras changed to %s; restarting it", slot, ", ".join(j.camera_id for j in new_jobs))
            if w.process is None:
                w.jobs = new_jobs
                self._fresh_start(w, now)
            else:
                w.intent, w.next_jobs = "restart", new_jobs
                self._request_stop(w, now)
        for slot in plan.keep:
            w = self._workers[slot]
            if w.state in (WorkerState.FAILED, WorkerState.CONFIG_ERROR):
                self._fresh_start(w, now)
        for group in plan.new:
            w = self._add_worker(group)
            if self._started:
                self._spawn(w, now)

    def retry_failed(self) -> None:
        """Give every FAILED or CONFIG_ERROR worker a fresh budget and respawn it now."""
        now = self._clock()
        for w in self._workers.values():
            if w.state in (WorkerState.FAILED, WorkerState.CONFIG_ERROR):
                self._fresh_start(w, now)

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop every worker: close its control pipe, wait up to `timeout_s` in all, then SIGKILL the rest."""
        grace = self._settings.stop_timeout_s if timeout_s is None else timeout_s
        deadline = self._clock() + grace
        for w in self._workers.values():
            w.intent = "shutdown"
            w.respawn_at = None
            if w.process is not None:
                self._request_stop(w, self._clock())
        while True:
            live = [w for w in self._workers.values() if w.process is not None and w.process.exitcode is None]
            remaining = deadline - self._clock()
            if not live or remaining <= 0:
                break
            wait([w.process.sentinel for w in live if w.process is not None], timeout=min(remaining, 0.25))
            for w in live:
                self._drain(w)
        for w in self._workers.values():
            if w.process is not None and w.process.exitcode is None:
                log.warning("worker %d (pid %s) did not stop within %.1f s; killing it", w.slot, w.pid, grace)
                self._kill(w, signal.SIGKILL)
        now = self._clock()
        for w in self._workers.values():
            if w.process is not None:
                w.process.join(_JOIN_AFTER_KILL_S)
                self._drain(w)
                self._reap(w, now)
            w.state = WorkerState.STOPPED

    def snapshot(self) -> PoolSnapshot:
        workers: list[WorkerInfo] = []
        cameras: dict[str, WorkerState] = {}
        for w in sorted(self._workers.values(), key=lambda w: w.slot):
            workers.append(WorkerInfo(w.slot, w.state, w.camera_ids, w.pid, w.budget.spent, w.last_exit))
            for i, cid in enumerate(w.camera_ids):
                state = w.state
                if state in (WorkerState.STARTING, WorkerState.RUNNING):  # each camera by its own first beat
                    beaten = i < len(w.counts) and w.counts[i] > 0
                    state = WorkerState.RUNNING if beaten else WorkerState.STARTING
                cameras[cid] = state
        return PoolSnapshot(workers=tuple(workers), cameras=cameras)

    # -- internals ---------------------------------------------------------------------------------------------

    def _add_worker(self, jobs: Sequence[Any]) -> WorkerSlot:
        s = self._settings
        budget = RestartBudget(s.restart_limit, s.restart_window_s)
        w = WorkerSlot(slot=self._next_slot, jobs=tuple(jobs), budget=budget)
        self._workers[w.slot] = w
        self._next_slot += 1
        return w

    def _fresh_start(self, w: WorkerSlot, now: float) -> None:
        w.budget.reset()
        w.failures = 0
        if self._started:
            self._spawn(w, now)

    def _spawn(self, w: WorkerSlot, now: float) -> None:
        s = self._settings
        ctl_r, ctl_w = self._ctx.Pipe(duplex=False)
        rep_r, rep_w = self._ctx.Pipe(duplex=False)
        if s.report_pipe_bytes:
            with contextlib.suppress(OSError):  # EPERM above /proc/sys/fs/pipe-max-size: keep the default
                fcntl.fcntl(rep_r.fileno(), _F_SETPIPE_SZ, s.report_pipe_bytes)
        ids = w.camera_ids
        heartbeat = Heartbeat(self._ctx.RawArray(ctypes.c_uint64, len(ids)), ids)
        title = f"{s.title_prefix}: worker {w.slot} ({', '.join(ids)})"[:200]
        short = f"matthan-w{w.slot}"
        level = s.log_level if s.log_level is not None else logging.getLogger().getEffectiveLevel()
        process = self._ctx.Process(
            target=child_main,
            name=short,
            args=(s.worker_entry, w.jobs, ReportSink(rep_w), heartbeat, ctl_r, title, short, level, SECRETS.snapshot()),
            daemon=True,
        )
        try:
            process.start()
        except OSError as exc:  # out of memory, PIDs or file descriptors: count it like a crash, retry later
            for conn in (ctl_r, ctl_w, rep_r, rep_w):
                conn.close()
            self._after_failure(w, now, None, None, f"could not start: {exc}")
            return
        finally:
            ctl_r.close()  # the child holds its own copies now; ours would hide its end-of-file
            rep_w.close()
        w.process, w.control, w.reader, w.heartbeat = process, ctl_w, ReportReader(rep_r), heartbeat
        w.state, w.intent, w.respawn_at, w.started_at = WorkerState.STARTING, "run", None, now
        w.counts = (0,) * len(ids)
        w.moved_at = [now] * len(ids)
        log.info("worker %d started (pid %d) for %s", w.slot, process.pid, ", ".join(ids))
        self._emit(EventKind.STARTED, w, "")

    def _drain(self, w: WorkerSlot) -> None:
        if w.reader is None:
            return
        ids = set(w.camera_ids)
        for report in w.reader.drain():
            camera_id = getattr(report, "camera_id", None)
            if camera_id is not None and camera_id not in ids:
                continue  # a late report for a camera this worker no longer holds (reload)
            self._on_report(report)

    def _watch(self, w: WorkerSlot, now: float) -> None:
        s = self._settings
        if w.state is WorkerState.STOPPING:
            if now >= w.stop_deadline:
                log.warning("worker %d (pid %s) overran its %.1f s stop grace; killing it", w.slot, w.pid,
                            s.stop_timeout_s)
                self._kill(w, signal.SIGKILL)
            return
        if w.state is WorkerState.HUNG:  # SIGTERM went out on the previous tick and it is still here
            self._kill(w, signal.SIGKILL)
            return
        assert w.heartbeat is not None
        counts = w.heartbeat.read()
        for i, (old, new) in enumerate(zip(w.counts, counts, strict=True)):
            if new != old:
                w.moved_at[i] = now
        w.counts = counts
        if w.state is WorkerState.STARTING and all(counts):
            w.state = WorkerState.RUNNING
        if w.failures and now - w.started_at >= s.stable_after_s:
            w.failures = 0
        stalled = stalled_cameras(w.camera_ids, counts, w.moved_at, now, s.hang_timeout_s, s.boot_timeout_s)
        if stalled:
            message = f"no progress from {', '.join(stalled)} for over {s.hang_timeout_s:.0f} s"
            log.error("worker %d (pid %s) is hung: %s; sending SIGTERM", w.slot, w.pid, message)
            self._emit(EventKind.HUNG, w, message)
            w.state = WorkerState.HUNG
            self._kill(w, signal.SIGTERM)

    def _reap(self, w: WorkerSlot, now: float) -> None:
        """The worker's process has exited: release its channels and decide what comes next."""
        assert w.process is not None
        w.process.join(0)
        code, pid = w.process.exitcode, w.process.pid
        self._drain(w)
        self._release(w)
        w.last_exit = code
        if w.intent == "retire":
            del self._workers[w.slot]
            log.info("worker %d (pid %s) retired: all its cameras were removed", w.slot, pid)
            self._emit(EventKind.RETIRED, w, "all its cameras were removed", pid=pid, exitcode=code)
        elif w.intent == "shutdown":
            w.state = WorkerState.STOPPED
        elif w.intent == "restart":
            w.jobs = w.next_jobs
            self._spawn(w, now)  # a reload restart is not a failure: no budget, no backoff
        elif code == EX_CONFIG:
            w.state = WorkerState.CONFIG_ERROR
            message = "configuration error (exit 78); not restarting until the configuration is reloaded"
            log.error("worker %d (pid %s) for %s: %s", w.slot, pid, ", ".join(w.camera_ids), message)
            self._emit(EventKind.CONFIG_ERROR, w, message, pid=pid, exitcode=code)
        else:
            self._after_failure(w, now, pid, code, describe_exit(code))

    def _after_failure(self, w: WorkerSlot, now: float, pid: int | None, code: int | None, reason: str) -> None:
        s = self._settings
        w.failures += 1
        self._emit(EventKind.EXITED, w, reason, pid=pid, exitcode=code)
        if not w.budget.spend(now):
            if len(w.jobs) > 1 and len(self._workers) < self._max_workers:
                self._split(w, now, reason)
                return
            w.state = WorkerState.FAILED
            w.respawn_at = now + s.failed_cooloff_s if s.failed_cooloff_s else None
            message = (f"{reason}; restart budget of {s.restart_limit} per {s.restart_window_s:.0f} s "
                       "exhausted, giving up on these cameras")
            log.error("worker %d (pid %s) for %s: %s", w.slot, pid, ", ".join(w.camera_ids), message)
            self._emit(EventKind.FAILED, w, message, pid=pid, exitcode=code)
            return
        delay = backoff_s(w.failures, s.backoff_initial_s, s.backoff_max_s)
        w.state, w.respawn_at = WorkerState.BACKOFF, now + delay
        log.warning("worker %d (pid %s) for %s: %s; restarting in %.1f s (restart %d of %d in %.0f s)", w.slot, pid,
                    ", ".join(w.camera_ids), reason, delay, w.budget.spent, s.restart_limit,
                    s.restart_window_s)

    def _split(self, w: WorkerSlot, now: float, reason: str) -> None:
        """Halve a crash-looping worker's cameras over two workers, each with a fresh budget (a bisection)."""
        s = self._settings
        half = len(w.jobs) // 2
        first, second = w.jobs[:half], w.jobs[half:]
        other = self._add_worker(second)
        message = (f"{reason}; restart budget exhausted, splitting its cameras into "
                   f"{', '.join(j.camera_id for j in first)} | {', '.join(j.camera_id for j in second)} "
                   "to isolate the one that crashes")
        log.error("worker %d: %s", w.slot, message)
        self._emit(EventKind.SPLIT, w, message)
        w.jobs = first
        for x in (w, other):
            x.budget.reset()
            x.failures = 0
            x.state, x.respawn_at = WorkerState.BACKOFF, now + s.backoff_initial_s

    def _request_stop(self, w: WorkerSlot, now: float) -> None:
        if w.control is not None:
            w.control.close()  # end-of-file at the worker: its stop event is set
            w.control = None
        if w.state is not WorkerState.STOPPING:
            w.state, w.stop_deadline = WorkerState.STOPPING, now + self._settings.stop_timeout_s
        w.respawn_at = None

    def _kill(self, w: WorkerSlot, sig: int) -> None:
        if w.process is not None and w.process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(w.process.pid, sig)

    def _release(self, w: WorkerSlot) -> None:
        if w.reader is not None:
            w.reader.close()
        if w.control is not None:
            w.control.close()
        if w.process is not None:
            with contextlib.suppress(ValueError):
                w.process.close()
        w.process, w.reader, w.control, w.heartbeat = None, None, None, None

    def _emit(self, kind: EventKind, w: WorkerSlot, message: str, *, pid: int | None = None,
              exitcode: int | None = None) -> None:
        self._on_event(SupervisorEvent(kind, w.slot, w.camera_ids, pid if pid is not None else w.pid, exitcode,
                                       message))
