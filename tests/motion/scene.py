"""Synthetic camera scenes for the motion tests: a textured colour background, sensor noise, objects, light."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

W, H = 640, 360


def background(seed: int = 1) -> np.ndarray:
    """A BGR street-like scene: sky gradient, coloured walls, green foliage patches, a grey road, texture."""
    rng = np.random.default_rng(seed)
    img = np.zeros((H, W, 3), np.uint8)
    img[:] = (110, 115, 120)
    img[: H // 3] = np.linspace(200, 150, H // 3, dtype=np.uint8)[:, None, None]
    for _ in range(14):
        x, y = int(rng.integers(0, W - 80)), int(rng.integers(H // 4, H - 60))
        colour = tuple(int(c) for c in rng.integers(30, 220, 3))
        cv2.rectangle(img, (x, y), (x + int(rng.integers(30, 160)), y + int(rng.integers(20, 90))), colour, -1)
    for _ in range(6):  # foliage: green, bright under infra-red
        cx, cy = int(rng.integers(0, W)), int(rng.integers(H // 5, H // 2))
        cv2.circle(img, (cx, cy), int(rng.integers(20, 50)), (40, 140, 50), -1)
    texture = rng.integers(-12, 13, (H, W, 1), dtype=np.int16)
    return np.clip(img.astype(np.int16) + texture, 0, 255).astype(np.uint8)


def luma(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


def infrared(bgr: np.ndarray) -> np.ndarray:
    """The same scene as a camera in IR night mode shows it: foliage glows, colours collapse, contrast changes."""
    b, g, r = (bgr[..., i].astype(np.float32) for i in range(3))
    ir = 0.15 * b + 0.6 * g + 0.45 * r
    return np.clip(ir * 0.9 + 25, 0, 255).astype(np.uint8)


class Noise:
    """Cycles through pre-drawn sensor noise frames (drawing fresh noise per frame would dominate test time)."""

    def __init__(self, sigma: float = 2.0, n: int = 8, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self._frames = [rng.normal(0, sigma, (H, W)).astype(np.int16) for _ in range(n)]
        self._i = 0

    def add(self, grey: np.ndarray) -> np.ndarray:
        self._i = (self._i + 1) % len(self._frames)
        return np.clip(grey.astype(np.int16) + self._frames[self._i], 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Crossing:
    """A square `size` px that crosses the image left to right between t0 and t1 at height `y`."""

    t0: float
    t1: float
    y: int = 200
    size: int = 48
    value: int = 20

    def draw(self, grey: np.ndarray, t: float) -> bool:
        if not self.t0 <= t <= self.t1:
            return False
        x = int(-self.size + (W + self.size) * (t - self.t0) / (self.t1 - self.t0))
        cv2.rectangle(grey, (x, self.y), (x + self.size, self.y + self.size), self.value, -1)
        return True


def frames(duration: float, fps: float, t0: float = 1_700_000_000.0) -> Iterator[tuple[float, float]]:
    """(t relative, capture ts) pairs at `fps` for `duration` seconds."""
    for i in range(math.floor(duration * fps)):
        t = i / fps
        yield t, t0 + t
