"""One fresh picture from a camera, for the `snapshot` command (MQTT) and `matthan-agent snapshot` (CLI)."""

from __future__ import annotations

import threading

from agent.motion import SnapshotSettings, encode_jpeg
from agent.video import SourceError, SourceSettings, open_source
from agent.video.errors import Stalled

GRAB_TIMEOUT_S = 15.0  # open (10 s) + the first keyframe of a 2 s GOP, with margin


def grab_jpeg(uri: str, *, snapshot: bool = False, jpeg: SnapshotSettings | None = None,
              timeout_s: float = GRAB_TIMEOUT_S) -> bytes:
    """Open `uri`, take the first decoded frame, return it as JPEG. Raises SourceError (typed) on failure."""
    stop = threading.Event()
    timer = threading.Timer(timeout_s, stop.set)
    timer.daemon = True
    timer.start()
    try:
        source = open_source(uri, SourceSettings(open_timeout_s=min(10.0, timeout_s)), snapshot=snapshot)
        frames = source.frames(stop)
        try:
            frame = next(frames, None)
            if frame is None:
                raise Stalled(f"no picture within {timeout_s:.0f} s")
            return encode_jpeg(frame.bgr(), jpeg or SnapshotSettings())
        finally:
            frames.close()  # closes the stream now, not whenever the generator is collected
    finally:
        stop.set()
        timer.cancel()


__all__ = ["GRAB_TIMEOUT_S", "SourceError", "grab_jpeg"]
