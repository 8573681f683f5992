"""Event hysteresis: turns a stream of `MotionResult`s into motion events. Pure: no clock, no I/O.

All durations are measured on the frames' capture timestamps, in seconds, so the tracker behaves the same at 1 fps
and at 15 fps and when a recording is replayed faster than real time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from agent.models import Box, EventKind, MotionEvent, MotionResult
from agent.motion.settings import TrackerSettings

EPS_S = 1e-6  # s; capture timestamps are floats, so "exactly min_motion later" must count


def union_box(boxes: tuple[Box, ...] | list[Box], start: Box | None = None) -> Box | None:
    """The smallest box holding `start` and every box of `boxes` (None when there is nothing)."""
    acc = start
    for b in boxes:
        if acc is None:
            acc = b
            continue
        x0, y0 = min(acc.x, b.x), min(acc.y, b.y)
        x1, y1 = max(acc.x + acc.w, b.x + b.w), max(acc.y + acc.h, b.y + b.h)
        acc = Box(x0, y0, x1 - x0, y1 - y0)
    return acc


@dataclass(slots=True)
class _Open:
    """The running (or candidate) event; private and mutable, only frozen `MotionEvent`s leave the tracker."""

    event_id: str
    start_ts: float
    last_motion_ts: float
    peak_score: float = 0.0
    peak_ts: float | None = None
    union: Box | None = None
    peak_box: Box | None = None
    zones: frozenset[str] = frozenset()
    frames: int = 0
    started: bool = False
    last_update_ts: float = 0.0
    dirty: bool = False


class EventTracker:
    """One camera's event state machine: idle -> candidate -> running -> idle."""

    def __init__(
        self,
        camera_id: str,
        settings: TrackerSettings | None = None,
        *,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.camera_id = camera_id
        self.settings = settings or TrackerSettings()
        self._new_id = new_id
        self._open: _Open | None = None

    @property
    def active(self) -> bool:
        """True while an event has started and not ended (adaptive decoding stays in full mode)."""
        return self._open is not None and self._open.started

    @property
    def peak_ts(self) -> float | None:
        """Capture time of the best frame of the candidate or running event: the pipeline keeps that frame."""
        return None if self._open is None else self._open.peak_ts

    @property
    def event_id(self) -> str | None:
        return None if self._open is None else self._open.event_id

    def _event(self, o: _Open, kind: EventKind, ts: float, end_ts: float | None = None) -> MotionEvent:
        return MotionEvent(
            event_id=o.event_id,
            camera_id=self.camera_id,
            kind=kind,
            start_ts=o.start_ts,
            ts=ts,
            end_ts=end_ts,
            peak_score=o.peak_score,
            peak_ts=o.peak_ts,
            union_box=o.union,
            peak_box=o.peak_box,
            zones=tuple(sorted(o.zones)),
            frames_analysed=o.frames,
        )

    def _absorb(self, o: _Open, r: MotionResult) -> None:
        o.frames += 1
        if not r.motion:
            return
        o.last_motion_ts = r.ts
        if r.score > o.peak_score or o.peak_ts is None:
            o.peak_score, o.peak_ts = r.score, r.ts
            o.peak_box = union_box(r.boxes)
            o.dirty = True
        new_union = union_box(r.boxes, o.union)
        if new_union != o.union:
            o.union, o.dirty = new_union, True
        if not o.zones.issuperset(r.zones):
            o.zones, o.dirty = o.zones | frozenset(r.zones), True

    def update(self, r: MotionResult) -> list[MotionEvent]:
        """Feed one analysed frame's result; returns the events it starts, updates or ends (usually none)."""
        s = self.settings
        out = self.tick(r.ts)
        o = self._open
        if o is None:
            if not r.motion:
                return out
            o = self._open = _Open(event_id=self._new_id(), start_ts=r.ts, last_motion_ts=r.ts)
        elif not o.started and not r.motion:
            self._open = None  # the candidate's motion was too short: forget it
            return out
        self._absorb(o, r)
        if not o.started:
            if r.ts - o.start_ts + EPS_S >= s.min_motion_s:
                o.started, o.last_update_ts, o.dirty = True, r.ts, False
                out.append(self._event(o, EventKind.START, r.ts))
            return out
        if r.ts - o.start_ts + EPS_S >= s.max_event_s:
            out.append(self._event(o, EventKind.END, r.ts, end_ts=r.ts))
            self._open = None
            if r.motion:  # the same activity goes on under a new id
                n = self._open = _Open(event_id=self._new_id(), start_ts=r.ts, last_motion_ts=r.ts, started=True)
                self._absorb(n, r)
                n.last_update_ts, n.dirty = r.ts, False
                out.append(self._event(n, EventKind.START, r.ts))
            return out
        if o.dirty and r.ts - o.last_update_ts + EPS_S >= s.update_interval_s:
            o.last_update_ts, o.dirty = r.ts, False
            out.append(self._event(o, EventKind.UPDATE, r.ts))
        return out

    def tick(self, ts: float) -> list[MotionEvent]:
        """End the running event if `event_gap_s` has passed since its last motion (also when no frames arrive)."""
        o = self._open
        if o is None or not o.started or ts - o.last_motion_ts + EPS_S < self.settings.event_gap_s:
            return []
        self._open = None
        return [self._event(o, EventKind.END, ts, end_ts=o.last_motion_ts)]

    def flush(self, ts: float) -> list[MotionEvent]:
        """End whatever is running now (shutdown, camera disabled): an event never stays open forever."""
        o, self._open = self._open, None
        if o is None or not o.started:
            return []
        return [self._event(o, EventKind.END, ts, end_ts=o.last_motion_ts)]
