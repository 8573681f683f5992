"""All cameras' status machines behind one lock (see status.py for the machine itself)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from agent.health.status import Clock, StatusMachine, StatusThresholds
from agent.models import CameraReport, CameraStatus


class StatusBoard:
    """Every camera's machine behind one lock. The supervisor calls `observe`; the health thread calls `tick`
    once a second and publishes what it returns; `snapshot` feeds health, the state file and `rebirth`."""

    def __init__(
        self,
        *,
        thresholds: StatusThresholds | None = None,
        mono: Clock = time.monotonic,
        wall: Clock = time.time,
        daytime: Callable[[float], bool] | None = None,
    ) -> None:
        self._t = thresholds or StatusThresholds()
        self._mono = mono
        self._wall = wall
        self._daytime = daytime
        self._lock = threading.Lock()
        self._machines: dict[str, StatusMachine] = {}

    def _machine(self, camera_id: str, enabled: bool = True) -> StatusMachine:
        m = self._machines.get(camera_id)
        if m is None:
            m = StatusMachine(
                camera_id, thresholds=self._t, mono=self._mono, wall=self._wall, daytime=self._daytime,
                enabled=enabled,
            )
            self._machines[camera_id] = m
        return m

    def add(self, camera_id: str, *, enabled: bool = True) -> CameraStatus | None:
        """Start tracking a camera (idempotent). Returns its initial status the first time."""
        with self._lock:
            return self._machine(camera_id, enabled).tick()

    def remove(self, camera_id: str) -> bool:
        """Stop tracking a camera (removed from the config). True if it was tracked."""
        with self._lock:
            return self._machines.pop(camera_id, None) is not None

    def sync(self, camera_ids: Iterable[str]) -> list[str]:
        """Keep exactly these cameras; returns the ids removed (their retained status should be cleared)."""
        wanted = set(camera_ids)
        with self._lock:
            gone = [c for c in self._machines if c not in wanted]
            for c in gone:
                del self._machines[c]
            for c in sorted(wanted):
                self._machine(c)
            return gone

    def observe(self, report: CameraReport) -> CameraStatus | None:
        with self._lock:
            return self._machine(report.camera_id).observe(report)

    def tick(self) -> list[CameraStatus]:
        with self._lock:
            out = [m.tick() for m in self._machines.values()]
        return [s for s in out if s is not None]

    def set_enabled(self, camera_id: str, enabled: bool) -> CameraStatus | None:
        with self._lock:
            return self._machine(camera_id).set_enabled(enabled)

    def snapshot(self) -> dict[str, CameraStatus]:
        with self._lock:
            return {c: m.current() for c, m in sorted(self._machines.items())}

    def reports(self) -> dict[str, CameraReport]:
        with self._lock:
            return {c: r for c, m in sorted(self._machines.items()) if (r := m.last_report()) is not None}

    def camera_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._machines)

    def enabled(self, camera_id: str) -> bool | None:
        with self._lock:
            m = self._machines.get(camera_id)
            return None if m is None else m.enabled
