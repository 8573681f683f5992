"""Image sequences (`dir/in%06d.jpg`): recorded stills that installers replay to tune a camera."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator

import cv2

from agent.video.errors import DecodeError, NotFound
from agent.video.frame import Frame

_PRINTF = re.compile(r"%0?(\d*)d")
FIRST_INDEXES = range(0, 5)  # like FFmpeg's image2: a sequence may start at 0..4
MAX_UNREADABLE = 10  # consecutive unreadable images before the sequence counts as broken


class BadPattern(ValueError):
    """The image-sequence pattern is not of the form dir/name%06d.jpg."""


def check_pattern(pattern: str) -> None:
    if len(_PRINTF.findall(pattern)) != 1 or pattern.count("%") != 1:
        raise BadPattern(f"{pattern!r}: an image sequence needs exactly one printf counter such as %06d "
                         "(example: frames/in%06d.jpg)")


class ImageSequenceSource:
    """Yields the images `pattern % i` for consecutive i, stamped `start_ts + n / fps`, until one is missing."""

    live = False

    def __init__(self, pattern: str, fps: float = 5.0, *, start_ts: float = 0.0) -> None:
        check_pattern(pattern)
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.pattern, self.fps, self.start_ts = pattern, fps, start_ts
        self.frames_decoded = 0
        self.packets_in = 0
        self.decode_s = 0.0

    def describe(self) -> str:
        return self.pattern

    def set_keyframes_only(self, on: bool) -> None:
        """Every still is a keyframe: nothing to switch."""

    def _first(self) -> int:
        for i in FIRST_INDEXES:
            if os.path.exists(self.pattern % i):
                return i
        folder = os.path.dirname(self.pattern) or "."
        if not os.path.isdir(folder):
            raise NotFound(f"{self.pattern}: folder {folder!r} does not exist")
        raise NotFound(f"{self.pattern}: no image {self.pattern % FIRST_INDEXES[0]!r} (or up to "
                       f"{self.pattern % FIRST_INDEXES[-1]!r}) in {folder!r}")

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        import time

        i, unreadable = self._first(), 0
        while os.path.exists(self.pattern % i):
            if stop is not None and stop.is_set():
                return
            t0 = time.perf_counter()
            y = cv2.imread(self.pattern % i, cv2.IMREAD_GRAYSCALE)
            self.decode_s += time.perf_counter() - t0
            self.packets_in += 1
            i += 1
            if y is None:
                unreadable += 1
                if unreadable >= MAX_UNREADABLE or self.frames_decoded == 0:
                    raise DecodeError(f"{self.pattern % (i - 1)}: not a readable image")
                continue
            unreadable = 0
            n = self.frames_decoded
            self.frames_decoded += 1
            yield Frame(y=y, ts=self.start_ts + n / self.fps, index=n, keyframe=True)
