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
           size: tuple[int, int] = (W, H), draw: Callable[[np.ndarray, int], None] | None = None) -> Path:
    """An H.264 MP4 with sensor-like noise, dark squares crossing at `crossings` (t0, t1), optionally frozen."""
    w, h = size
    rng = np.random.default_rng(1)
    base = np.full((h, w), BACKGROUND, np.uint8)
    base[: h // 3] = 170
    base[h // 2 :, : w // 3] = 60
    noise = [rng.integers(-3, 4, (h, w), dtype=np.int16) for _ in range(6)]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"g": str(int(gop_s * fps)), "preset": "ultrafast", "tune": "zerolatency", "bf": "0"}
        frozen: np.ndarray | None = None
        for i in range(int(seconds * fps)):
            if frozen_after is not None and i / fps >= frozen_after and frozen is not None:
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
