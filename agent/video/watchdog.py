"""The last-new-frame watchdog: a stalled or frozen camera often keeps its socket open and repeats old frames.

Pure: the caller passes monotonic times. A frame is "new" when it differs from the reference picture; a run of
identical pictures longer than `frozen_after_s` is a frozen image, and no frame at all for `stall_after_s` is a
stall. Comparison is on a sparse grid of single pixels (not averages), because averaging would also hide the
sensor noise that tells a live static scene from a frozen one.
"""

from __future__ import annotations

import cv2
import numpy as np

from agent.video.settings import WatchdogSettings

GRID_STEP = 8  # px between compared pixels: ~3,600 samples at 640x360
FROZEN_TOLERANCE = 2  # grey levels; a live sensor's noise exceeds this somewhere on the grid, a frozen image never


class FrameWatchdog:
    def __init__(self, settings: WatchdogSettings | None = None) -> None:
        self.settings = settings or WatchdogSettings()
        self._ref: np.ndarray | None = None
        self._ref_since = 0.0  # monotonic time the current reference picture first appeared
        self.last_frame_mono: float | None = None
        self.last_new_frame_mono: float | None = None

    def frame(self, y: np.ndarray, now: float) -> bool:
        """Record a received frame; True when it differs from the previous picture (a new frame)."""
        self.last_frame_mono = now
        # Two native calls (a 3,600-byte gather, then the largest difference): no int16 temporaries to allocate.
        sample = y[GRID_STEP // 2 :: GRID_STEP, GRID_STEP // 2 :: GRID_STEP].copy()
        ref = self._ref
        if ref is None or ref.shape != sample.shape or cv2.norm(sample, ref, cv2.NORM_INF) > FROZEN_TOLERANCE:
            self._ref, self._ref_since = sample, now
            self.last_new_frame_mono = now
            return True
        return False

    def frozen(self, now: float) -> bool:
        return self._ref is not None and now - self._ref_since >= self.settings.frozen_after_s

    def stalled(self, now: float, since: float) -> bool:
        """No frame for stall_after_s (counting from `since`, the connection time, before the first frame)."""
        last = self.last_frame_mono if self.last_frame_mono is not None else since
        return now - last >= self.settings.stall_after_s

    def last_new_frame_age(self, now: float) -> float | None:
        return None if self.last_new_frame_mono is None else now - self.last_new_frame_mono

    def reset(self) -> None:
        self._ref = None
        self.last_frame_mono = None
