"""The frame type every source yields, and luma extraction from PyAV frames without an extra decode pass."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

# Formats whose first plane is the luma (Y) plane at full resolution: read it directly, no conversion.
_PLANAR_LUMA = frozenset({
    "yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "nv16", "gray", "yuv440p",
    "yuvj440p", "yuv411p", "yuv410p",
})


class Frame:
    """One decoded picture. `y` may be a view onto decoder memory: it stays valid while this object lives.

    A plain slotted class, not a dataclass, and `y` is read from `image` only when first asked for: in full mode two
    frames in three are decoded but never analysed, and for those building the luma view (format lookup, plane
    objects, a numpy view) cost more CPU than the rest of the pipeline's per-frame work together, since a camera
    thread wakes to a cold cache for every frame."""

    __slots__ = ("_y", "image", "index", "keyframe", "ts")

    def __init__(self, y: np.ndarray | None = None, ts: float = 0.0, index: int = 0, keyframe: bool = False,
                 image: Any = None) -> None:
        if y is None and image is None:
            raise ValueError("a frame needs its luma plane or an image to read it from")
        self._y = y  # (h, w) uint8 luma, or None until first read from `image`
        self.ts = ts  # capture time, UTC epoch seconds (arrival time for live streams; see pyav.py)
        self.index = index  # 0-based count of frames this source delivered
        self.keyframe = keyframe
        self.image = image  # the av.VideoFrame or BGR ndarray behind `y`, for a colour snapshot; None if grey only

    @property
    def y(self) -> np.ndarray:
        """The (h, w) uint8 luma plane."""
        y = self._y
        if y is None:
            y = self._y = luma(self.image)
        return y

    def __repr__(self) -> str:
        return f"Frame(index={self.index}, ts={self.ts:.3f}, keyframe={self.keyframe})"

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
