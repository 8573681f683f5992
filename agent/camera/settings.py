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


SUBSCRIPTION_S = 60.0  # s; cheap cameras hold 2-5 subscriptions, so a lost client's slot must free itself soon
RENEW_S = 30.0  # s between Renews: half the lifetime, so a Renew held up by a slow pull in flight (up to 5 + 10 s)
#                 still reaches the camera 15 s before it would drop us
PULL_TIMEOUT_S = 5.0  # s of long poll per PullMessages
SILENCE_MARGIN_S = 10.0  # s beyond the pull timeout (or, for a Renew, at all) after which no answer means the
#                          camera is gone


@dataclass(frozen=True, slots=True)
class OnvifEventsSettings:
    camera_id: str
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    emit_events: bool = True  # False with `both`: the alarm only wakes decoding
    tracker: TrackerSettings = field(default_factory=TrackerSettings)
    report_interval_s: float = 5.0
    subscription_s: float = SUBSCRIPTION_S
    renew_s: float = RENEW_S
    pull_timeout_s: float = PULL_TIMEOUT_S
    silence_margin_s: float = SILENCE_MARGIN_S

    def __post_init__(self) -> None:
        if self.subscription_s < 1.0:  # the termination time goes out in whole seconds (PT60S)
            raise ValueError(f"subscription_s must be >= 1, got {self.subscription_s}")
        for name in ("renew_s", "pull_timeout_s", "silence_margin_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.renew_s + self.silence_s >= int(self.subscription_s):
            raise ValueError(f"renew_s + pull_timeout_s + silence_margin_s ({self.renew_s} + {self.pull_timeout_s} + "
                             f"{self.silence_margin_s} s) must be less than subscription_s ({self.subscription_s} s): "
                             "a Renew waits for the pull in flight and must still reach the camera in time")

    @property
    def silence_s(self) -> float:
        """How long a pull may go unanswered before the camera counts as gone."""
        return self.pull_timeout_s + self.silence_margin_s
