"""What the police station would see, built from the agent's MQTT messages (docs/mqtt.md). Pure: no I/O.

`StationView.handle(topic, payload, now)` folds one message into the view and returns the lines a plain console
prints for it. Snapshot bytes are saved by the caller (agent.demo.station), which then calls `snapshot_saved`.
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

EVENT_HISTORY = 12  # motion lines kept for the live table (the plain console prints every one)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def classify(prefix: str, topic: str) -> tuple[str, str]:
    """(kind, id) of an agent topic: ("status", ""), ("camera_status", cam), ("camera_motion", cam),
    ("event", ""), ("event_snapshot", event_id), ("health", ""), ... or ("other", rest)."""
    if not topic.startswith(prefix + "/"):
        return "other", topic
    levels = topic[len(prefix) + 1:].split("/")
    match levels:
        case ["status"] | ["health"] | ["gap"] as single:
            return single[0], ""
        case ["cameras", camera, ("status" | "motion" | "snapshot") as what]:
            return f"camera_{what}", camera
        case ["events", "motion"]:
            return "event", ""
        case ["events", "motion", event_id, "snapshot"]:
            return "event_snapshot", event_id
        case ["cmd_resp", name]:
            return "cmd_resp", name
    return "other", "/".join(levels)


def snapshot_filename(event_id: str) -> str:
    """A file name for an event's JPEG (event ids are topic-safe, but not necessarily file-name-safe)."""
    return (_UNSAFE.sub("_", event_id) or "event")[:120] + ".jpg"


def short_id(event_id: str) -> str:
    """The first 8 characters: enough to tell a few dozen events apart on a screen; the file name has all of it."""
    return event_id[:8]


def clock(ts: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) if ts else "--:--:--"


@dataclass
class CameraRow:
    camera: str
    state: str = "?"
    reason: str = ""
    message: str = ""
    since: float | None = None
    motion: bool = False
    fps: float | None = None  # from the latest health sample, else from the status
    last_frame_age_s: float | None = None  # as the latest health sample saw it (frames keep coming in between)


@dataclass
class EventLine:
    ts: float
    camera: str
    event_id: str
    kind: str  # start | end
    score: float
    zones: tuple[str, ...]
    duration_s: float | None
    snapshot: str | None
    historical: bool


@dataclass
class StationView:
    prefix: str
    agent_state: str = "?"
    cameras: dict[str, CameraRow] = field(default_factory=dict)
    events: deque[EventLine] = field(default_factory=lambda: deque(maxlen=EVENT_HISTORY))
    event_starts: int = 0
    event_ends: int = 0
    event_ids: set[str] = field(default_factory=set)
    snapshots: dict[str, str] = field(default_factory=dict)  # event id -> saved file
    health: dict[str, Any] | None = None
    health_at: float | None = None  # monotonic
    ever_online: set[str] = field(default_factory=set)
    max_online: int = 0
    messages: int = 0
    _seen: set[tuple[str, str]] = field(default_factory=set)  # (event id, type): at-least-once delivery dedupe

    # -- folding messages in -------------------------------------------------------------------------------------
    def handle(self, topic: str, payload: bytes, now: float) -> list[str]:
        self.messages += 1
        kind, ident = classify(self.prefix, topic)
        if kind == "event_snapshot":
            return []  # bytes: the caller saves them and calls snapshot_saved()
        if kind == "camera_motion":
            self._row(ident).motion = payload.strip() == b"ON"
            return []
        try:
            body = json.loads(payload)
        except ValueError:
            return [f"[{clock(time.time())}] unreadable payload on {topic}"] if kind != "other" else []
        if not isinstance(body, dict):
            return []
        if kind == "status":
            return self._agent_status(body)
        if kind == "camera_status":
            return self._camera_status(ident, body)
        if kind == "event":
            return self._event(body)
        if kind == "health":
            return self._health(body, now)
        if kind == "gap":
            return [f"[{clock(time.time())}] gap: the agent's outbox dropped {body.get('rows')} message(s)"]
        return []

    def snapshot_saved(self, event_id: str, path: str) -> list[str]:
        """The JPEG of `event_id` is on disk. It normally comes just before the event's start (docs/mqtt.md), which
        then carries the path; a line of its own only when the start was shown without it."""
        late = False
        self.snapshots[event_id] = path
        for line in self.events:
            if line.event_id == event_id and line.snapshot is None:
                line.snapshot, late = path, True
        return [f"[{clock(time.time())}] snapshot of event {short_id(event_id)} saved: {path}"] if late else []

    def _row(self, camera: str) -> CameraRow:
        row = self.cameras.get(camera)
        if row is None:
            row = self.cameras[camera] = CameraRow(camera)
        return row

    def _agent_status(self, body: dict[str, Any]) -> list[str]:
        state = str(body.get("state", "?"))
        if state == self.agent_state:
            return []
        self.agent_state = state
        return [f"[{clock(body.get('ts'))}] agent {state} (version {body.get('version') or '?'})"]

    def _camera_status(self, camera: str, body: dict[str, Any]) -> list[str]:
        row = self._row(camera)
        state, reason = str(body.get("state", "?")), str(body.get("reason", ""))
        changed = (state, reason) != (row.state, row.reason)
        row.state, row.reason, row.message = state, reason, str(body.get("message") or "")
        row.since = body.get("since")
        if row.fps is None and isinstance(body.get("fps"), int | float):
            row.fps = float(body["fps"])
        self._count_online()
        if not changed:
            return []
        why = f" ({reason}{': ' + row.message if row.message else ''})" if reason not in ("", "none") else ""
        return [f"[{clock(body.get('since'))}] camera {camera}: {state}{why}"]

    def _count_online(self) -> None:
        online = {c for c, r in self.cameras.items() if r.state == "online"}
        self.ever_online |= online
        self.max_online = max(self.max_online, len(online))

    def _event(self, body: dict[str, Any]) -> list[str]:
        kind, event_id = str(body.get("type")), str(body.get("event_id"))
        if kind not in ("start", "end") or (event_id, kind) in self._seen:
            return []
        self._seen.add((event_id, kind))
        self.event_ids.add(event_id)
        if kind == "start":
            self.event_starts += 1
        else:
            self.event_ends += 1
        start_ts, end_ts = body.get("start_ts"), body.get("end_ts")
        duration = end_ts - start_ts if isinstance(start_ts, int | float) and isinstance(end_ts, int | float) else None
        line = EventLine(ts=float(body.get("ts") or time.time()), camera=str(body.get("camera")), event_id=event_id,
                         kind=kind, score=float(body.get("score") or 0.0), zones=tuple(body.get("zones") or ()),
                         duration_s=duration, snapshot=self.snapshots.get(event_id),
                         historical=bool(body.get("historical")))
        self.events.append(line)
        return [format_event(line)]

    def _health(self, body: dict[str, Any], now: float) -> list[str]:
        self.health, self.health_at = body, now
        for camera, cam in (body.get("cameras") or {}).items():
            if not isinstance(cam, dict):
                continue
            row = self._row(camera)
            fps = cam.get("fps_in")
            row.fps = float(fps) if isinstance(fps, int | float) else None
            age = cam.get("last_frame_age_s")
            row.last_frame_age_s = float(age) if isinstance(age, int | float) else None
        return [format_health(body, self.online_count(), len(self.cameras))]

    # -- reading -------------------------------------------------------------------------------------------------
    def online_count(self) -> int:
        return sum(1 for r in self.cameras.values() if r.state == "online")


def format_event(e: EventLine) -> str:
    zones = ",".join(e.zones) or "-"
    extra = f"  {e.duration_s:.1f} s" if e.duration_s is not None else ""
    snap = f"  snapshot {e.snapshot}" if e.snapshot else ""
    old = "  (replayed)" if e.historical else ""
    return (f"[{clock(e.ts)}] motion {e.kind.upper():<5} {e.camera:<12} event {short_id(e.event_id)}  "
            f"score {e.score:.3f}  zones {zones}{extra}{snap}{old}")


def health_summary(body: dict[str, Any]) -> str:
    host, outbox = body.get("host") or {}, body.get("outbox") or {}
    cpu, temp = host.get("cpu_pct"), host.get("temperature_c")
    cpu_s = f"{cpu:.0f}%" if isinstance(cpu, int | float) else "-"
    temp_s = f"{temp:.1f}°C" if isinstance(temp, int | float) else "n/a"
    return f"cpu {cpu_s}  temperature {temp_s}  outbox depth {outbox.get('depth', '-')}"


def format_health(body: dict[str, Any], online: int, total: int) -> str:
    return f"[{clock(body.get('ts'))}] health: {health_summary(body)}  cameras online {online}/{total}"
