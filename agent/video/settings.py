"""Settings for frame sources; the composition root maps the configuration file onto these."""

from __future__ import annotations

from dataclasses import dataclass

from agent.models import DecodeMode


@dataclass(frozen=True, slots=True)
class SourceSettings:
    open_timeout_s: float = 10.0  # s; a camera that is booting answers within this, a hung one never does
    read_timeout_s: float = 5.0  # s; > 2 GOPs of a 2 s-GOP stream, so keyframe mode never trips it
    rtsp_transport: str = "tcp"  # TCP survives village Wi-Fi packet loss; UDP smears the image
    decode_mode: DecodeMode = DecodeMode.ADAPTIVE
    analysis_fps: float = 5.0  # frames analysed per second in full mode; the rest are decoded but not analysed
    hardware_decoder: bool = True  # use h264_v4l2m2m when the board has it (Raspberry Pi 4)
    snapshot_interval_s: float = 1.0  # s between HTTP snapshot polls
    sequence_fps: float = 5.0  # timestamp basis for image sequences

    def __post_init__(self) -> None:
        if self.open_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise ValueError("timeouts must be > 0 s")
        if self.rtsp_transport not in ("tcp", "udp"):
            raise ValueError(f"rtsp_transport must be tcp or udp, got {self.rtsp_transport!r}")
        if self.analysis_fps <= 0 or self.sequence_fps <= 0:
            raise ValueError("analysis_fps and sequence_fps must be > 0")
        if self.snapshot_interval_s <= 0:
            raise ValueError("snapshot_interval_s must be > 0")


@dataclass(frozen=True, slots=True)
class WatchdogSettings:
    frozen_after_s: float = 10.0  # s of identical pictures; > 2 GOPs, since each keyframe re-encodes sensor noise
    stall_after_s: float = 10.0  # s without any frame; 2 read timeouts
