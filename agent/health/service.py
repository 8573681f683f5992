"""The `health` thread: ticks the status board, publishes status changes, samples health, writes the state file.

The daemon builds one `HealthService` with plain callables (so this package needs nothing from mqtt or outbox),
feeds camera reports through `observe()`, and runs `run(stop)` in a thread. Everything happens on that thread once
per tick, so the status board, collector and state file never race each other.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.health.board import StatusBoard
from agent.health.metrics import HealthCollector, sample_to_dict
from agent.health.statefile import StateFileWriter
from agent.models import CameraReport, CameraStatus, HealthSample

log = logging.getLogger(__name__)

TICK_S = 1.0  # status budgets (15 s fault, 10 s recovery) are met with a 1 s tick


@dataclass(frozen=True, slots=True)
class HealthHooks:
    """What the daemon provides. Every hook is called on the health thread and must not block for long."""

    publish_status: Callable[[CameraStatus], None]  # retained camera status (only called on change)
    publish_health: Callable[[HealthSample], None]  # e.g. outbox.put(records.health(topics, sample))
    outbox_stats: Callable[[], Mapping[str, Any]] = dict
    worker_pids: Callable[[], Iterable[int]] = tuple
    onvif_errors: Callable[[], Mapping[str, int]] = dict
    last_events: Callable[[], Mapping[str, float]] = dict  # camera -> UTC epoch of its last event start
    extra_state: Callable[[], Mapping[str, Any]] = field(default=dict)  # anything else for `status` (no secrets)


class HealthService:
    def __init__(
        self,
        board: StatusBoard,
        collector: HealthCollector,
        statefile: StateFileWriter | None,
        hooks: HealthHooks,
        *,
        health_interval_s: float = 60.0,
        state_interval_s: float = 5.0,
        tick_s: float = TICK_S,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.board, self.collector, self.statefile, self.hooks = board, collector, statefile, hooks
        self._health_interval = health_interval_s
        self._state_interval = state_interval_s
        self._tick = tick_s
        self._mono = mono
        self._next_health = mono() + min(health_interval_s, 60.0)  # first sample once CPU % has an interval
        self._next_state = mono()
        self._last_health: dict[str, Any] | None = None
        self._changed = threading.Event()

    def observe(self, report: CameraReport) -> None:
        """From the supervisor's report queue (any thread). Status changes are published on the next tick."""
        self.collector.observe(report)
        status = self.board.observe(report)
        if status is not None:
            self._publish(status)
            self._changed.set()

    def set_enabled(self, camera_id: str, enabled: bool) -> CameraStatus | None:
        """For the `set_camera` command: the new status is published at once."""
        status = self.board.set_enabled(camera_id, enabled)
        if status is not None:
            self._publish(status)
            self._changed.set()
        return status

    def rebirth(self) -> int:
        """Re-publish every camera's current status (the `rebirth` command); returns how many."""
        statuses = self.board.snapshot()
        for status in statuses.values():
            self._publish(status)
        return len(statuses)

    def step(self) -> None:
        """One tick: publish status changes; sample health and write the state file when due."""
        for status in self.board.tick():
            self._publish(status)
            self._changed.set()
        now = self._mono()
        if now >= self._next_health:
            self._next_health = now + self._health_interval
            self.sample_now()
        if self.statefile is not None and (now >= self._next_state or self._changed.is_set()):
            self._changed.clear()
            self._next_state = now + self._state_interval
            self.write_state()

    def sample_now(self) -> HealthSample:
        h = self.hooks
        sample = self.collector.sample(
            statuses=self.board.snapshot(), reports=self.board.reports(), outbox=h.outbox_stats(),
            worker_pids=h.worker_pids(), onvif_errors=h.onvif_errors(),
        )
        self._last_health = sample_to_dict(sample)
        try:
            h.publish_health(sample)
        except Exception:  # the publisher is another package; a failure is logged and the next sample retried
            log.exception("health: publishing the sample failed")
        return sample

    def write_state(self) -> None:
        if self.statefile is None:
            return
        try:
            self.statefile.write(self.board.snapshot(), last_events=self.hooks.last_events(),
                                 health=self._last_health, extra=self.hooks.extra_state())
        except OSError as exc:
            log.warning("health: cannot write the state file %s: %s", self.statefile.path, exc)

    def run(self, stop: threading.Event) -> None:
        """The thread body: `while not stop.wait(tick)`; removes the state file on a clean stop."""
        self.write_state()
        while not stop.wait(self._tick):
            self.step()
        if self.statefile is not None:
            self.statefile.remove()

    def _publish(self, status: CameraStatus) -> None:
        try:
            self.hooks.publish_status(status)
        except Exception:  # same reasoning as for health: never let a publisher bug stop status tracking
            log.exception("health: publishing the status of %s failed", status.camera_id)
