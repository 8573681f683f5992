"""Frame sources: RTSP streams and files (PyAV), HTTP snapshots, image sequences; typed errors; the watchdog.

Every source has `frames(stop) -> Iterator[Frame]` (one connection attempt, raising `SourceError`),
`set_keyframes_only(bool)`, `describe()` (a credential-free name) and counters `packets_in`, `frames_decoded`,
`decode_s`. Reconnecting is the caller's loop, paced by `Backoff`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from agent.lazy import lazy_exports
from agent.video.settings import SourceSettings, WatchdogSettings

_EXPORTS = {
    "Backoff": "agent.video.backoff",
    **{name: "agent.video.errors" for name in (
        "AuthFailed", "DecodeError", "EndOfStream", "NotFound", "OpenTimeout", "Refused", "SourceError", "Stalled",
        "Unreachable", "mask_uri")},
    "Frame": "agent.video.frame",
    "is_greyscale": "agent.video.frame",
    "luma": "agent.video.frame",
    "FrameWatchdog": "agent.video.watchdog",
    "HardwareMemory": "agent.video.pyav",
}
# Loaded on first use (agent.lazy): PyAV, numpy and OpenCV stay out of processes that only need the settings.
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:
    from agent.video.backoff import Backoff
    from agent.video.errors import (
        AuthFailed,
        DecodeError,
        EndOfStream,
        NotFound,
        OpenTimeout,
        Refused,
        SourceError,
        Stalled,
        Unreachable,
        mask_uri,
    )
    from agent.video.frame import Frame, is_greyscale, luma
    from agent.video.pyav import HardwareMemory
    from agent.video.watchdog import FrameWatchdog


class FrameSource(Protocol):
    live: bool
    packets_in: int
    frames_decoded: int
    decode_s: float

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]: ...

    def set_keyframes_only(self, on: bool) -> None: ...

    def describe(self) -> str: ...


def open_source(uri: str, settings: SourceSettings | None = None, *, snapshot: bool = False,
                start_ts: float = 0.0, hardware_memory: HardwareMemory | None = None) -> FrameSource:
    """The right source for `uri`: an HTTP snapshot URL (with `snapshot=True`), an image-sequence pattern
    (contains a printf counter like %06d), or anything PyAV opens (rtsp://, a video file). Pass the same
    `hardware_memory` to every session of a stream so a failed hardware decoder is not tried again."""
    s = settings or SourceSettings()
    if snapshot:
        from agent.video.snapshot_http import HttpSnapshotSource

        return HttpSnapshotSource(uri, interval_s=s.snapshot_interval_s, timeout_s=s.open_timeout_s)
    if "%" in uri and "://" not in uri:
        from agent.video.sequence import ImageSequenceSource

        return ImageSequenceSource(uri, s.sequence_fps, start_ts=start_ts)
    from agent.video.pyav import AvSource

    return AvSource(uri, s, start_ts=start_ts, hardware_memory=hardware_memory)


__all__ = [
    "AuthFailed", "Backoff", "DecodeError", "EndOfStream", "Frame", "FrameSource", "FrameWatchdog", "NotFound",
    "OpenTimeout", "Refused", "SourceError", "SourceSettings", "Stalled", "Unreachable", "WatchdogSettings",
    "is_greyscale", "luma", "mask_uri", "open_source",
]
