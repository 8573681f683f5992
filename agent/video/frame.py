"""The frame type every source yields, and luma extraction from PyAV frames without an extra decode pass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

# Formats whose first plane is the luma (Y) plane at full resolution: read it directly, no conversion.
_PLANAR_LUMA = frozenset({
    "yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "nv16", "gray", "yuv440p",
    "yuvj440p", "yuv411p", "yuv410p",
})


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded picture. `y` may be a view onto decoder memory: it stays valid while this object lives."""

    y: np.ndarray  # (h, w) uint8 luma
    ts: float  # capture time, UTC epoch seconds (arrival time for live streams; see pyav.py)
    index: int  # 0-based count of frames this source delivered
    keyframe: bool = False
    image: Any = None  # the av.VideoFrame or BGR ndarray behind `y`, for a colour snapshot; None if grey only

    def bgr(self) -> np.ndarray:
        """A colour copy for a snapshot (costly: only for the few frames that become JPEGs)."""
        img = self.image
        if isinstance(img, np.ndarray):
            return img
        if img is not None and hasattr(img, "to_ndarray"):
            return img.to_ndarray(format="bgr24")
        return cv2.cvtColor(np.ascontiguousarray(self.y), cv2.COLOR_GRAY2BGR)


def luma(frame: Any) -> np.ndarray:
    """The Y plane of an av.VideoFrame as a numpy view (no copy) when the format is planar YUV; else converted."""
    if frame.format.name in _PLANAR_LUMA:
        plane = frame.planes[0]
        line = plane.line_size
        if line > 0:
            buf = np.frombuffer(plane, np.uint8)
            return buf[: line * frame.height].reshape(frame.height, line)[:, : frame.width]
    # RGB or bottom-up formats (old AVI codecs): rare and small, so a conversion is fine.
    return frame.to_ndarray(format="gray")


def is_greyscale(frame: Any, tolerance: float = 3.0) -> bool | None:
    """True when a YUV frame's colour planes are flat at 128 (infra-red night mode); None when unknown."""
    if frame.format.name not in _PLANAR_LUMA or frame.format.name == "gray" or len(frame.planes) < 2:
        return None
    plane = frame.planes[1]
    buf = np.frombuffer(plane, np.uint8)
    sample = buf[:: 97]  # a sparse sample is plenty: IR mode makes every chroma value 128
    return bool(np.abs(sample.astype(np.int16) - 128).mean() < tolerance)
