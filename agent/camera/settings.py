"""Everything one camera pipeline needs, as plain frozen settings (the composition root builds them from config)."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.motion import MotionSettings, SnapshotSettings, TrackerSettings
from agent.video import SourceSettings, WatchdogSettings


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    camera_id: str
    uri: str  # rtsp://..., a video file, an image-sequence pattern, or an HTTP snapshot URL with snapshot=True
    snapshot: bool = False  # poll `uri` as HTTP JPEG snapshots instead of streaming
    source: SourceSettings = field(default_factory=SourceSettings)
    motion: MotionSettings = field(default_factory=MotionSettings)
    tracker: TrackerSettings = field(default_factory=TrackerSettings)
    jpeg: SnapshotSettings = field(default_factory=SnapshotSettings)
    watchdog: WatchdogSettings = field(default_factory=WatchdogSettings)
    report_interval_s: float = 5.0  # s between periodic CameraReports (state changes are reported at once)
    hint_hold_s: float = 10.0  # s of full decoding after an external motion hint (ONVIF event) in adaptive mode
    # s between TCP probes of a dead camera's port while waiting to reconnect: with the connect and the first frame,
    # a returning camera is online well within the 10 s the station is promised, however long it was away.
    reconnect_probe_s: float = 2.0

    def __post_init__(self) -> None:
        if not self.camera_id:
            raise ValueError("camera_id must not be empty")
        if self.reconnect_probe_s <= 0:
            raise ValueError(f"reconnect_probe_s must be > 0, got {self.reconnect_probe_s}")
        if self.report_interval_s <= 0:
            raise ValueError(f"report_interval_s must be > 0, got {self.report_interval_s}")
