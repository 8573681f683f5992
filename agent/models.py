"""Types that cross a thread or process boundary.

Everything here is a frozen dataclass or an enum built from the standard library only, so that any package may
import it and so that a value handed from a camera worker process to the supervisor (pickled) or from a paho
callback to the relay thread can never be mutated behind the receiver's back. Packages add their own private
types next to their code; only what travels between packages lives here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class CameraState(enum.StrEnum):
    """What the station shows for a camera (retained on `cameras/<id>/status`)."""

    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"


class StatusReason(enum.StrEnum):
    """Why a camera is not simply online. Values are part of the MQTT contract (docs/mqtt.md)."""

    NONE = "none"
    # offline reasons
    UNREACHABLE = "unreachable"
    AUTH_FAILED = "auth_failed"
    ONVIF_ERROR = "onvif_error"
    RTSP_REFUSED = "rtsp_refused"
    RTSP_TIMEOUT = "rtsp_timeout"
    STREAM_STALLED = "stream_stalled"
    FROZEN_IMAGE = "frozen_image"
    DECODER_ERROR = "decoder_error"
    DISABLED = "disabled"
    # degraded reasons
    LOW_FPS = "low_fps"
    FREQUENT_RECONNECTS = "frequent_reconnects"
    BLACK_IMAGE = "black_image"
    UNIFORM_IMAGE = "uniform_image"
    STUCK_IR = "stuck_ir"
    STARTING = "starting"


class DecodeMode(enum.StrEnum):
    """How much of a stream is decoded; see docs/architecture.md for the CPU cost of each."""

    FULL = "full"
    KEYFRAME = "keyframe"
    ADAPTIVE = "adaptive"


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned rectangle in relative image coordinates (0..1), so it survives a resolution change."""

    x: float
    y: float
    w: float
    h: float

    def as_list(self) -> list[float]:
        return [round(self.x, 4), round(self.y, 4), round(self.w, 4), round(self.h, 4)]


@dataclass(frozen=True, slots=True)
class CameraInfo:
    """Everything discovery learned about one camera; the inventory persists it, keyed by `camera_id`."""

    camera_id: str
    endpoint_uuid: str | None = None
    ip: str | None = None
    name: str | None = None
    location: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    firmware: str | None = None
    serial: str | None = None
    hardware_id: str | None = None
    mac: str | None = None
    xaddr: str | None = None
    stream_uri: str | None = None
    stream_width: int | None = None
    stream_height: int | None = None
    stream_encoding: str | None = None
    snapshot_uri: str | None = None
    events_supported: bool | None = None
    auth: str = "unknown"  # "ok" | "failed" | "unknown"
    error: str | None = None  # last interrogation failure reason, if any


@dataclass(frozen=True, slots=True)
class MotionResult:
    """What the detector says about one analysed frame. `motion` is the final decision after all suppression."""

    ts: float
    score: float
    motion: bool
    boxes: tuple[Box, ...] = ()
    zones: tuple[str, ...] = ()
    suppressed: str | None = None  # e.g. "global_change" when a frame was vetoed; None otherwise


class EventKind(enum.StrEnum):
    START = "start"
    UPDATE = "update"
    END = "end"


@dataclass(frozen=True, slots=True)
class MotionEvent:
    """One change in a motion event's life. Timestamps are UTC epoch seconds of frame capture."""

    event_id: str
    camera_id: str
    kind: EventKind
    start_ts: float
    ts: float
    end_ts: float | None = None
    peak_score: float = 0.0
    peak_ts: float | None = None
    union_box: Box | None = None
    peak_box: Box | None = None
    zones: tuple[str, ...] = ()
    frames_analysed: int = 0
    snapshot_path: str | None = None


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """A camera's published status. `since` is the UTC epoch at which `state`/`reason` last changed."""

    camera_id: str
    state: CameraState
    reason: StatusReason = StatusReason.NONE
    message: str = ""
    since: float = 0.0
    last_frame_ts: float | None = None
    fps_in: float | None = None
    fps_analysed: float | None = None
    decode_mode: DecodeMode | None = None


@dataclass(frozen=True, slots=True)
class HealthSample:
    """One periodic health report. Absent sensors are None, never 0, so the station can tell them apart."""

    ts: float
    version: str
    boot_id: str
    uptime_s: float
    host: dict[str, Any] = field(default_factory=dict)
    outbox: dict[str, Any] = field(default_factory=dict)
    cameras: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CameraReport:
    """What a camera pipeline (in a worker process) tells the supervisor, every few seconds and on every change.

    The pipeline only observes; the supervisor's status machine (agent/health) turns a run of reports into the
    published `CameraStatus`, with damping. Counters are cumulative since the pipeline started, so a lost report
    loses no information.
    """

    camera_id: str
    ts: float  # UTC epoch when the report was made
    connected: bool  # the source is open and delivering packets
    error: StatusReason | None = None  # typed failure of the last connection attempt or read, if any
    error_message: str = ""  # plain words for the technician; never contains credentials
    decode_mode: DecodeMode | None = None
    frames_in: int = 0  # frames (or packets, in keyframe mode) received
    frames_analysed: int = 0
    fps_in: float | None = None
    fps_analysed: float | None = None
    last_frame_ts: float | None = None  # capture time of the last *new* frame
    last_frame_age_s: float | None = None  # monotonic age of the last new frame
    reconnects: int = 0
    stalls: int = 0
    frozen: bool = False  # identical frames for longer than the frozen threshold
    mean_luma: float | None = None  # of the last analysed frame, 0..255
    luma_std: float | None = None  # near 0 means black or uniform image
    greyscale: bool | None = None  # colour planes flat: the camera is in infra-red night mode
    events: int = 0  # motion events started
