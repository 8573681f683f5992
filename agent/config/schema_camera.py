"""Config models for cameras and motion: the defaults every camera gets, and per-camera overrides.

A camera entry leaves a tunable unset (None) to inherit it from `motion:`; `agent.config.effective` does the merge,
so the rest of the agent never sees a half-specified camera.
"""

from __future__ import annotations

import enum
from typing import Self
from urllib.parse import urlsplit

from pydantic import field_validator, model_validator

from agent.config.fields import Strict, cross_field, field
from agent.config.secrets import SecretFields
from agent.config.types import EndpointUuid, IPv4, Name, Polygon
from agent.models import DecodeMode

URL_SCHEMES = ("rtsp", "rtsps", "http", "https", "file")
SNAPSHOT_SCHEMES = ("http", "https")
SNAPSHOT_INTERVAL_MIN_S = 0.2  # s; 5 pictures/s; a camera that must be watched faster should stream its substream
SNAPSHOT_INTERVAL_MAX_S = 5.0  # < half the video watchdog's 10 s stall limit, so a slow poll is not a dead camera

# One description per tunable, shared by the defaults (motion:) and the per-camera override.
_DOC = {
    "stream": (
        "which stream to analyse: auto, sub, main, or snapshot (poll still JPEGs over HTTP instead of decoding "
        "video, for a camera whose RTSP stream is too heavy for the Pi or the Wi-Fi link)"
    ),
    "snapshot_interval_s": (
        "with stream: snapshot, seconds between pictures; every picture is analysed. Keep it shorter than "
        "motion.event_gap_s; at most 5 because a camera silent for 10 s counts as stalled"
    ),
    "min_stream_width": "with stream: auto, the narrowest stream width (pixels) worth analysing",
    "analysis_fps": "frames per second analysed (the rest are skipped)",
    "decode_mode": "full: decode every frame; keyframe: only keyframes (cheapest); adaptive: keyframes until motion",
    "event_source": "video: our detector; onvif_events: the camera's own alarm; both",
    "sensitivity": "0 (only big, strong changes) to 1 (the slightest change counts)",
    "min_area": "smallest moving region that counts, as a fraction of the image (0.001 = 0.1%)",
}


class StreamChoice(enum.StrEnum):
    """Which of a camera's ONVIF profiles to analyse."""

    AUTO = "auto"  # the smallest stream at least min_stream_width wide
    SUB = "sub"
    MAIN = "main"
    # Poll still JPEGs over HTTP (ONVIF GetSnapshotUri, or the entry's http url) instead of decoding RTSP: one
    # JPEG a second needs no H.264 decoder on the Pi and far less of a weak Wi-Fi link than a continuous stream.
    SNAPSHOT = "snapshot"


class EventSource(enum.StrEnum):
    """Where motion events come from."""

    VIDEO = "video"  # our own detector on the decoded stream
    ONVIF_EVENTS = "onvif_events"  # the camera's own motion alarm (PullPoint), no decoding
    BOTH = "both"


class OsdMask(enum.StrEnum):
    """Whether to find and ignore the camera's burnt-in clock and caption (on-screen display)."""

    AUTO = "auto"
    OFF = "off"


class CameraTunables(Strict):
    """Settings a camera may override; in `motion:` each has a default, in a camera entry None means inherit."""

    stream: StreamChoice | None = field(None, _DOC["stream"], type_name="auto|sub|main|snapshot")
    min_stream_width: int | None = field(
        None, _DOC["min_stream_width"], ge=64, le=7680
    )
    analysis_fps: float | None = field(None, _DOC["analysis_fps"], gt=0, le=30)
    decode_mode: DecodeMode | None = field(
        None, _DOC["decode_mode"],
        type_name="full|keyframe|adaptive",
    )
    event_source: EventSource | None = field(
        None, _DOC["event_source"], type_name="video|onvif_events|both"
    )
    sensitivity: float | None = field(
        None, _DOC["sensitivity"], ge=0, le=1
    )
    min_area: float | None = field(
        None, _DOC["min_area"], gt=0, le=1
    )
    snapshot_interval_s: float | None = field(
        None, _DOC["snapshot_interval_s"], ge=SNAPSHOT_INTERVAL_MIN_S, le=SNAPSHOT_INTERVAL_MAX_S
    )


class SnapshotConfig(Strict):
    """The JPEG saved with each motion event."""

    width: int = field(640, "width in pixels (height follows the aspect ratio)", ge=64, le=3840)
    jpeg_quality: int = field(80, "JPEG quality, 1 (smallest) to 100 (best)", ge=1, le=100)


class MotionConfig(CameraTunables):
    """Motion detection defaults for every camera."""

    stream: StreamChoice = field(StreamChoice.AUTO, _DOC["stream"])
    min_stream_width: int = field(320, _DOC["min_stream_width"], ge=64, le=7680)
    analysis_fps: float = field(5.0, _DOC["analysis_fps"], gt=0, le=30)
    decode_mode: DecodeMode = field(
        DecodeMode.ADAPTIVE, _DOC["decode_mode"],
        type_name="full|keyframe|adaptive",
    )
    event_source: EventSource = field(
        EventSource.VIDEO, _DOC["event_source"],
        type_name="video|onvif_events|both",
    )
    sensitivity: float = field(0.5, _DOC["sensitivity"], ge=0, le=1)
    min_area: float = field(0.0008, _DOC["min_area"], gt=0, le=1)
    snapshot_interval_s: float = field(
        1.0, _DOC["snapshot_interval_s"], ge=SNAPSHOT_INTERVAL_MIN_S, le=SNAPSHOT_INTERVAL_MAX_S
    )
    downscale_width: int = field(320, "frames are shrunk to this width (pixels) before analysis", ge=64, le=1920)
    min_motion_s: float = field(0.5, "motion must last this long (seconds) before an event starts", ge=0, le=60)
    event_gap_s: float = field(5.0, "seconds without motion before an event ends", ge=0, le=600)
    max_event_s: float = field(
        300.0, "an event longer than this (seconds) is ended and a new one started", gt=0, le=86400
    )
    global_change_fraction: float = field(
        0.3, "when more than this fraction of the image changes at once (lights, IR switch), it is not motion",
        gt=0, le=1,
    )
    noise_map: bool = field(True, "learn and ignore places that always move (leaves, flags, water)")
    osd_mask: OsdMask = field(
        OsdMask.AUTO, "auto: find and ignore the camera's clock and caption; off", type_name="auto|off"
    )
    snapshot: SnapshotConfig = field(
        default_factory=SnapshotConfig, description="event snapshot JPEG", type_name="mapping"
    )

    @model_validator(mode="after")
    def _durations(self) -> Self:
        if self.min_motion_s >= self.max_event_s:
            raise cross_field(
                [(("min_motion_s",), f"must be shorter than max_event_s ({self.max_event_s:g} s)")]
            )
        return self


SNAPSHOT_NEEDS_HTTP = (
    "stream: snapshot polls pictures over HTTP, but this camera's url is not http:// or https://; "
    "give the camera's snapshot address (e.g. http://192.168.1.70/onvif/snapshot.jpg) or use stream: auto"
)


def is_snapshot_url(url: str) -> bool:
    """Whether `url` can be polled as HTTP snapshots (its scheme is http or https)."""
    return urlsplit(url).scheme.lower() in SNAPSHOT_SCHEMES


class CameraCredentials(SecretFields):
    """The user name and password of one camera."""

    username: str = field(description="user name on the camera", min_length=1)


class CameraEntry(CameraTunables):
    """Settings for one camera, matched to a discovered camera by uuid, then ip, then name."""

    name: Name | None = field(
        None, "the camera's id in topics and logs (e.g. cho); also matches a discovered camera of that name",
        type_name="name",
    )
    uuid: EndpointUuid | None = field(
        None, "ONVIF endpoint reference, urn:uuid:... (shown by `matthan-agent discover`)", type_name="urn:uuid"
    )
    ip: IPv4 | None = field(None, "the camera's IPv4 address", type_name="IPv4")
    display_name: str | None = field(None, "human name shown at the station (Vietnamese is fine)", max_length=100)
    location: str | None = field(None, "where the camera is, for the station's map or list", max_length=200)
    credentials: CameraCredentials | None = field(
        None, "this camera's user name and password (else discovery.credentials are tried)", type_name="mapping"
    )
    url: str | None = field(
        None, "direct stream URL (rtsp://, http://, file://) for a camera without ONVIF; needs name",
        type_name="URL",
    )
    masks: tuple[Polygon, ...] = field(
        (), "polygons ignored by motion detection, points [x, y] from 0 to 1 (0,0 = top left)",
        type_name="list of polygons",
    )
    zones: dict[Name, Polygon] = field(
        default_factory=dict, description="named polygons; events say which zones the motion touched",
        type_name="name: polygon",
    )
    enabled: bool = field(True, "false: keep the camera known but do not analyse it")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme.lower() not in URL_SCHEMES:
            raise ValueError(f"unsupported URL scheme '{parts.scheme}'; allowed: {', '.join(URL_SCHEMES)}")
        if parts.scheme.lower() != "file" and not parts.hostname:
            raise ValueError("the URL has no host, e.g. rtsp://192.168.1.64:554/stream2")
        return value

    @model_validator(mode="after")
    def _identity(self) -> Self:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        if self.name is None and self.uuid is None and self.ip is None:
            problems.append(((), "a camera entry needs at least one of name, uuid or ip to match a camera"))
        if self.url is not None and self.name is None:
            problems.append((("url",), "a camera given by url needs a name (its id in topics)"))
        if self.url is not None and self.credentials is not None and urlsplit(self.url).password:
            problems.append((("credentials",), "the url already holds user:password; remove one of the two"))
        if self.url is not None and self.stream is StreamChoice.SNAPSHOT and not is_snapshot_url(self.url):
            problems.append((("stream",), SNAPSHOT_NEEDS_HTTP))
        if problems:
            raise cross_field(problems)
        return self

    def label(self) -> str:
        """How to name this entry in messages: its name, else its uuid or ip."""
        return self.name or self.uuid or str(self.ip)
