"""Synthetic H.264 clips rendered with PyAV for the video, camera and replay tests (and the benchmark)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

W, H = 640, 360
BACKGROUND = 110


def square_at(i: int, fps: int, t0: float, t1: float, y: int = 150, size: int = 48) -> tuple[int, int] | None:
    """Top-left of a square crossing left to right between t0 and t1 seconds, or None outside."""
    t = i / fps
    if not t0 <= t <= t1:
        return None
    return int(-size + (W + size) * (t - t0) / (t1 - t0)), y


def render(path: Path, seconds: float, *, fps: int = 15, gop_s: float = 2.0,
           crossings: tuple[tuple[float, float], ...] = (), frozen_after: float | None = None,
           frozen_until: float | None = None, size: tuple[int, int] = (W, H),
           draw: Callable[[np.ndarray, int], None] | None = None,
           camera_like: bool = False) -> Path:
    """An H.264 MP4 with sensor-like noise, dark squares crossing at `crossings` (t0, t1), optionally frozen.

    `camera_like` adds a textured scene and stronger noise, so the stream costs what a real substream costs to
    decode (about 0.5-1 Mbit/s at 640x360) instead of the near-free flat picture the quick tests use.
    """
    w, h = size
    rng = np.random.default_rng(1)
    base = np.full((h, w), BACKGROUND, np.uint8)
    base[: h // 3] = 170
    base[h // 2 :, : w // 3] = 60
    amplitude = 3
    if camera_like:
        import cv2

        texture = cv2.resize(rng.integers(0, 255, (h // 6, w // 6), dtype=np.uint8), (w, h),
                             interpolation=cv2.INTER_CUBIC)
        base = np.clip(base.astype(np.int16) + (texture.astype(np.int16) - 128) // 2, 0, 255).astype(np.uint8)
        amplitude = 12
    noise = [rng.integers(-amplitude, amplitude + 1, (h, w), dtype=np.int16) for _ in range(6)]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"g": str(int(gop_s * fps)), "preset": "veryfast" if camera_like else "ultrafast",
                          "tune": "zerolatency", "bf": "0"}
        if camera_like:  # a cheap camera's substream: bitrate-capped, so noise does not become megabits
            stream.options |= {"maxrate": "900k", "bufsize": "1800k", "crf": "23"}
        frozen: np.ndarray | None = None
        for i in range(int(seconds * fps)):
            thawed = frozen_until is not None and i / fps >= frozen_until
            if frozen_after is not None and i / fps >= frozen_after and frozen is not None and not thawed:
                grey = frozen
            else:
                grey = np.clip(base.astype(np.int16) + noise[i % len(noise)], 0, 255).astype(np.uint8)
                for t0, t1 in crossings:
                    pos = square_at(i, fps, t0, t1, y=h * 150 // 360, size=max(8, w * 48 // 640))
                    if pos is not None:
                        x, y = pos
                        grey[y : y + max(8, w * 48 // 640), max(0, x) : max(0, x + max(8, w * 48 // 640))] = 20
                if draw is not None:
                    draw(grey, i)
                if frozen_after is not None and i / fps >= frozen_after:
                    frozen = grey
            frame = av.VideoFrame.from_ndarray(grey, format="gray").reformat(format="yuv420p")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
