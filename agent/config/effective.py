"""One camera's resolved settings: its entry's overrides on top of the `motion:` defaults.

The result is a frozen dataclass of plain values, so the supervisor can hand it to a camera worker process
(pickled) and the pipeline never has to know which value came from where.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from agent.config.schema import AgentConfig
from agent.config.schema_camera import CameraCredentials, CameraEntry, EventSource, OsdMask, StreamChoice
from agent.models import DecodeMode

PolygonPoints = tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class CameraSettings:
    """Everything the pipeline needs to know about one camera, with no value left to inherit."""

    name: str | None
    display_name: str | None
    location: str | None
    enabled: bool
    url: str | None
    credentials: CameraCredentials | None
    stream: StreamChoice
    min_stream_width: int
    analysis_fps: float
    decode_mode: DecodeMode
    event_source: EventSource
    sensitivity: float
    min_area: float
    snapshot_interval_s: float
    downscale_width: int
    min_motion_s: float
    event_gap_s: float
    max_event_s: float
    global_change_fraction: float
    noise_map: bool
    osd_mask: OsdMask
    snapshot_width: int
    snapshot_jpeg_quality: int
    masks: tuple[PolygonPoints, ...] = ()
    zones: dict[str, PolygonPoints] = field(default_factory=dict)


_OVERRIDABLE = (
    "stream", "min_stream_width", "analysis_fps", "decode_mode", "event_source", "sensitivity", "min_area",
    "snapshot_interval_s",
)


def effective_camera(cfg: AgentConfig, entry: CameraEntry | None = None, *, name: str | None = None) -> CameraSettings:
    """Merge `entry` (None: a discovered camera with no entry) over the motion defaults.

    `name` is the camera's id when the entry has none (an entry matched by uuid or ip, or no entry at all).
    """
    motion = cfg.motion
    tunables = {key: getattr(motion, key) for key in _OVERRIDABLE}
    if entry is not None:
        tunables.update({key: getattr(entry, key) for key in _OVERRIDABLE if getattr(entry, key) is not None})
    return CameraSettings(
        name=(entry.name if entry is not None and entry.name else name),
        display_name=entry.display_name if entry is not None else None,
        location=entry.location if entry is not None else None,
        enabled=entry.enabled if entry is not None else True,
        url=entry.url if entry is not None else None,
        credentials=entry.credentials if entry is not None else None,
        downscale_width=motion.downscale_width,
        min_motion_s=motion.min_motion_s,
        event_gap_s=motion.event_gap_s,
        max_event_s=motion.max_event_s,
        global_change_fraction=motion.global_change_fraction,
        noise_map=motion.noise_map,
        osd_mask=motion.osd_mask,
        snapshot_width=motion.snapshot.width,
        snapshot_jpeg_quality=motion.snapshot.jpeg_quality,
        masks=entry.masks if entry is not None else (),
        zones=dict(entry.zones) if entry is not None else {},
        **tunables,
    )


def match_camera(
    cfg: AgentConfig, *, uuid: str | None = None, ip: str | None = None, name: str | None = None
) -> CameraEntry | None:
    """The entry for a discovered camera: first by ONVIF endpoint uuid, then by IP address, then by name.

    The most stable identifier wins, so an entry pinned to a uuid keeps following its camera after a DHCP change.
    """
    if uuid:
        wanted = uuid.strip().lower()
        wanted = wanted if wanted.startswith("urn:uuid:") else f"urn:uuid:{wanted}"
        for entry in cfg.cameras:
            if entry.uuid == wanted:
                return entry
    if ip:
        try:
            address = ipaddress.IPv4Address(ip)
        except ValueError:
            address = None
        for entry in cfg.cameras:
            if address is not None and entry.ip == address:
                return entry
    if name:
        for entry in cfg.cameras:
            if entry.name == name:
                return entry
    return None
