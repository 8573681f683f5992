"""The supervisor process's main loop: signals, one supervision tick, systemd notifications, once per turn.

It runs in the main thread (signal handlers live there) and is the only caller of the `Supervisor`. What the rest
of the agent does on a reload or at shutdown (re-read the config, flush the outbox, publish `offline`) arrives as
callbacks, so this module knows nothing about cameras or MQTT.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable

from agent.supervisor.pool import Supervisor
from agent.supervisor.sdnotify import Notifier
from agent.supervisor.signals import SignalQueue
from agent.supervisor.state import WorkerState

log = logging.getLogger(__name__)

TICK_S = 1.0  # supervision period: hung workers get SIGKILL one tick after SIGTERM, so ~1 s apart
# Shutdown must fit systemd's budget (TimeoutStopSec=15 in the unit, the issue asks for 10 s): workers get 6 s,
# leaving the composition root ~3 s to commit the outbox and publish `offline` after `run()` returns.
STOP_WORKERS_S = 6.0


def default_status(supervisor: Supervisor) -> str:
    """'6/8 cameras running, 1 failed' from the pool's own view (the app may pass a richer text)."""
    snap = supervisor.snapshot()
    total = len(snap.cameras)
    text = f"{snap.count(WorkerState.RUNNING)}/{total} cameras running in {len(snap.workers)} workers"
    problems = [f"{n} {state.value}" for state in (WorkerState.FAILED, WorkerState.CONFIG_ERROR, WorkerState.BACKOFF)
                if (n := snap.count(state))]
    return text + (", " + ", ".join(problems) if problems else "")


class SupervisorLoop:
    """Run the supervisor until SIGTERM/SIGINT; SIGHUP calls `on_reload`; WATCHDOG=1 only while healthy."""

    def __init__(
        self,
        supervisor: Supervisor,
        *,
        notifier: Notifier | None = None,
        on_reload: Callable[[], None] | None = None,
        healthy: Callable[[], bool] | None = None,
        status_text: Callable[[], str] | None = None,
        on_tick: Callable[[], None] | None = None,
        on_stopping: Callable[[], None] | None = None,
        tick_s: float = TICK_S,
        stop_workers_s: float = STOP_WORKERS_S,
    ) -> None:
        self._supervisor = supervisor
        self._notifier = notifier if notifier is not None else Notifier.from_environment()
        self._on_reload = on_reload
        self._healthy = healthy or (lambda: True)
        self._status_text = status_text or (lambda: default_status(supervisor))
        self._on_tick = on_tick
        self._on_stopping = on_stopping
        self._tick_s = tick_s
        self._stop_workers_s = stop_workers_s
        self._signals = SignalQueue((signal.SIGTERM, signal.SIGINT, signal.SIGHUP))

    def request_stop(self) -> None:
        """Stop as if SIGTERM had arrived (safe from any thread: it only queues the request)."""
        self._signals.inject(signal.SIGTERM)

    def run(self) -> int:
        """Start the workers, supervise until asked to stop, stop them within the budget. Returns 0."""
        self._signals.install()
        try:
            self._supervisor.start()
            self._notifier.ready(self._status_text())
            self._loop()
        finally:  # also on an exception in a callback: no worker may outlive the loop
            log.info("stopping: asking the camera workers to finish their current frames")
            if self._on_stopping is not None:
                self._on_stopping()  # e.g. stop publishing camera statuses: the workers' last reports say "stopped"
            self._notifier.stopping("stopping camera workers")
            try:
                self._supervisor.stop(self._stop_workers_s)
            finally:
                self._signals.close()
        return 0

    def _loop(self) -> None:
        interval = self._notifier.watchdog_interval_s
        next_watchdog = time.monotonic()
        was_healthy = True
        while True:
            for signum in self._signals.pop_all():
                if signum in (signal.SIGTERM, signal.SIGINT):
                    log.info("%s received", signal.Signals(signum).name)
                    return
                if signum == signal.SIGHUP:
                    self._reload()
            self._supervisor.tick()
            if self._on_tick is not None:
                self._on_tick()
            self._notifier.status(self._status_text())
            now = time.monotonic()
            if interval is not None and now >= next_watchdog:
                healthy = self._healthy()
                if healthy != was_healthy:  # once per change: a log line per second would flood the journal
                    if healthy:
                        log.info("healthy again: resuming the systemd watchdog ping")
                    else:
                        log.warning("unhealthy: withholding the systemd watchdog ping, systemd will restart us")
                    was_healthy = healthy
                if healthy:
                    self._notifier.watchdog()
                    next_watchdog = now + interval
            self._signals.wait(self._tick_s)

    def _reload(self) -> None:
        if self._on_reload is None:
            log.info("SIGHUP received; nothing to reload")
            return
        log.info("SIGHUP received; reloading")
        self._notifier.notify("RELOADING=1")
        try:
            self._on_reload()
        except Exception:
            # A reload that fails (most often a typo in the edited file) must not take down cameras that are
            # running fine: keep the current configuration and say so loudly.
            log.exception("reload failed; still running with the previous configuration")
        finally:
            self._notifier.notify(f"READY=1\nSTATUS={' '.join(self._status_text().split())}")
