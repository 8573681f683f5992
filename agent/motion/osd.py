"""Find the on-screen clock (OSD timestamp) without configuration.

Nearly every cheap camera burns a clock into a corner band of the image. Its seconds digits change at every
sample taken one second or more apart, in the same few pixels, sample after sample, and in between they stand
still: from one frame to the next (at 3 fps or more) a clock pixel almost never changes, whereas a car creeping
along the top of the picture changes its pixels in every frame. The clock is also small: a few hundred pixels,
not a vehicle-sized patch. Once those pixels are found, the text line around them (several times
their width to each side, because the minutes, hours and date next to the seconds change too, only more rarely)
is masked for good.
"""

from __future__ import annotations

import numpy as np

BAND_FRACTION = 0.15  # of the height, at the top and at the bottom, where cameras draw their clock
SAMPLE_INTERVAL_S = 1.0  # s; the clock changes every second, so samples >= 1 s apart always differ there
WINDOW = 6  # samples per judgement; two agreeing judgements find the clock about 12 s after start
NEEDED = 5  # of WINDOW samples in which a pixel must have changed to be called "clock"
STEP_LEVELS = 35  # grey levels; OSD text is drawn with strong contrast
MAX_LINE_FRACTION = 0.08  # of the height; a clock line is thin (a swaying tree in the band is not a clock)
MIN_PIXELS = 6  # px; fewer is noise
MAX_BAND_FRACTION = 0.03  # of a band's pixels; the seconds digits are well under 1 %, a car is 10 %+
MAX_WIDTH_FRACTION = 0.25  # of the width: the changing digits of a clock are a few characters wide
MIN_DENSITY = 0.08  # changed pixels per pixel of their bounding box: digit strokes are dense, distant traffic is not
LINE_REACH = 4.0  # the mask extends this many times the digits' width to each side: hours, minutes and date
PAIR_MAX_GAP_S = 0.34  # s; the frame after a sample is checked for continuous change only at >= 3 fps
MOVING_LIMIT = 2  # samples in which a pixel also changed frame-to-frame; more is motion, not a clock
GIVE_UP_SAMPLES = 40  # samples (about 40 s) without a clock: stop looking, and stop paying for it
MARGIN_FRACTION = 0.025  # of the height, added above and below the changing digits


class OsdLearner:
    """Learns the clock's text line from full-resolution samples (thin digits vanish once downscaled).

    `boxes` are the masked text lines, as (left, top, right, bottom) fractions of the image, once found.
    """

    def __init__(self, shape: tuple[int, int]) -> None:
        h, w = shape
        self._shape = shape
        self._band = max(1, int(h * BAND_FRACTION))
        self._last: np.ndarray | None = None  # the last sample's bands, uint8
        self._last_ts = 0.0
        # Per-sample masks are kept bit-packed along the rows (np.packbits): a Pi watching 16 cameras holds 16
        # learners for their first minute, and unpacked booleans took 1.6 MB each at 640x360 (6.4 MB at 720p).
        packed_w = (w + 7) // 8
        self._hits = np.zeros((WINDOW, 2, self._band, packed_w), np.uint8)
        self._moving = np.zeros((WINDOW, 2, self._band, packed_w), np.uint8)
        # Running sums over the window, updated per sample instead of re-summing the window every second.
        self._hit_count = np.zeros((2, self._band, w), np.uint8)
        self._moving_count = np.zeros((2, self._band, w), np.uint8)
        self._pending_pair = False  # the frame after a sample is compared with the sample
        self._history: list[np.ndarray] = []  # the last WINDOW + 1 judgements, packed
        self._n = 0
        self.boxes: tuple[tuple[float, float, float, float], ...] = ()  # set once the clock has been found

    @property
    def learning(self) -> bool:
        """True until the first judgement (two windows of samples); the detector ignores the bands meanwhile."""
        return self._n <= 2 * WINDOW

    @property
    def band_fraction(self) -> float:
        return self._band / self._shape[0]

    def _bands(self, small: np.ndarray) -> np.ndarray:
        return np.stack((small[: self._band], small[-self._band :]))

    def _changed(self, y: np.ndarray, last: np.ndarray) -> np.ndarray:
        """Band pixels that stepped by more than STEP_LEVELS since `last` (a boolean (2, band, w) array)."""
        return np.abs(self._bands(y).astype(np.int16) - last) > STEP_LEVELS

    def _unpack(self, packed: np.ndarray) -> np.ndarray:
        return np.unpackbits(packed, axis=-1, count=self._shape[1]).view(np.bool_)

    @property
    def done(self) -> bool:
        """Found, or given up: a clock ticks from the first second, so after GIVE_UP_SAMPLES there is none."""
        return bool(self.boxes) or self._n >= GIVE_UP_SAMPLES

    def update(self, y: np.ndarray, ts: float) -> bool:
        """Feed one full-resolution grey frame; True when the clock was found by this call."""
        if self.done or y.shape != self._shape:
            return False
        found = self._sample(y, ts)
        if self.done:
            self._release()
        return found

    def _release(self) -> None:
        """Drop the sample windows once the search is over: at 640x360 they hold about 0.4 MB per camera, which
        a Pi carrying 16 cameras would otherwise keep for the life of the stream for nothing."""
        self._hits = self._moving = np.zeros((0, 2, 0, 0), np.uint8)
        self._hit_count = self._moving_count = np.zeros((2, 0, 0), np.uint8)
        self._history = []
        self._last = None

    @property
    def nbytes(self) -> int:
        """Bytes held in working arrays (tests and memory accounting)."""
        arrays = (self._hits, self._moving, self._hit_count, self._moving_count, *self._history)
        return sum(a.nbytes for a in arrays) + (0 if self._last is None else self._last.nbytes)

    def _sample(self, y: np.ndarray, ts: float) -> bool:
        if self._pending_pair:
            self._pending_pair = False
            if self._last is not None and 0 < ts - self._last_ts <= PAIR_MAX_GAP_S:
                moving = self._changed(y, self._last)
                slot = (self._n - 1) % WINDOW
                before = self._unpack(self._moving[slot])
                self._moving_count += moving & ~before
                self._moving[slot] = np.packbits(moving | before, axis=-1)
            return False
        if self._last is not None and ts - self._last_ts < SAMPLE_INTERVAL_S:
            return False
        self._pending_pair = True
        slot = self._n % WINDOW
        self._moving_count -= self._unpack(self._moving[slot])
        self._moving[slot] = 0
        if self._last is not None:
            hits = self._changed(y, self._last)
            self._hit_count -= self._unpack(self._hits[slot])
            self._hits[slot] = np.packbits(hits, axis=-1)
            self._hit_count += hits
            self._n += 1
        self._last, self._last_ts = self._bands(y), ts
        if self._n < WINDOW:
            return False
        clock = (self._hit_count >= NEEDED) & (self._moving_count < MOVING_LIMIT)
        # A clock ticks for ever: the same pixels must qualify in judgements a whole window apart.
        self._history.append(np.packbits(clock, axis=-1))
        if len(self._history) <= WINDOW:
            return False
        clock = clock & self._unpack(self._history.pop(0))
        h = self._shape[0]
        band_px = self._band * self._shape[1]
        found: list[tuple[float, float, float, float]] = []
        w = self._shape[1]
        for side in (0, 1):
            ys, xs = np.nonzero(clock[side])
            n = len(ys)
            if n < MIN_PIXELS or n > MAX_BAND_FRACTION * band_px:
                continue
            bh, bw = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
            if bh > MAX_LINE_FRACTION * h or bw > MAX_WIDTH_FRACTION * w or n < MIN_DENSITY * bh * bw:
                continue
            offset = 0 if side == 0 else h - self._band
            top = max(0.0, (offset + ys.min()) / h - MARGIN_FRACTION)
            bottom = min(1.0, (offset + ys.max() + 1) / h + MARGIN_FRACTION)
            left = max(0.0, (xs.min() - LINE_REACH * bw) / w)
            right = min(1.0, (xs.max() + 1 + LINE_REACH * bw) / w)
            found.append((left, top, right, bottom))
        self.boxes = tuple(found)
        return bool(found)
