"""Find the on-screen clock (OSD timestamp) without configuration.

Nearly every cheap camera burns a clock into a corner band of the image. Its seconds digits change at every
sample taken one second or more apart, in the same few pixels, sample after sample; real motion does not hit the
same compact patch of a thin band that regularly. Once those pixels are found, the whole text line (full width,
because the minutes, hours and date next to the seconds change too, only more rarely) is masked for good.
"""

from __future__ import annotations

import numpy as np

BAND_FRACTION = 0.15  # of the height, at the top and at the bottom, where cameras draw their clock
SAMPLE_INTERVAL_S = 1.0  # s; the clock changes every second, so samples >= 1 s apart always differ there
WINDOW = 6  # samples considered: the clock is found about 6 s after start
NEEDED = 5  # of WINDOW samples in which a pixel must have changed to be called "clock"
STEP_LEVELS = 35  # grey levels; OSD text is drawn with strong contrast
MAX_LINE_FRACTION = 0.08  # of the height; a clock line is thin (a swaying tree in the band is not a clock)
MIN_PIXELS = 6  # px; fewer is noise
MARGIN_FRACTION = 0.015  # of the height, added above and below the text line


class OsdLearner:
    """Learns the clock's text line from full-resolution samples (thin digits vanish once downscaled).

    `rows` is the masked band, as (top, bottom) fractions of the height, once found.
    """

    def __init__(self, shape: tuple[int, int]) -> None:
        h, w = shape
        self._shape = shape
        self._band = max(1, int(h * BAND_FRACTION))
        self._last: np.ndarray | None = None
        self._last_ts = 0.0
        self._hits = np.zeros((WINDOW, 2, self._band, w), np.bool_)
        self._n = 0
        self.rows: tuple[tuple[float, float], ...] = ()  # set once the clock has been found

    @property
    def learning(self) -> bool:
        """True until the first full window of samples has been judged; the detector ignores the bands meanwhile."""
        return self._n < WINDOW

    @property
    def band_fraction(self) -> float:
        return self._band / self._shape[0]

    def _bands(self, small: np.ndarray) -> np.ndarray:
        return np.stack((small[: self._band], small[-self._band :]))

    def update(self, y: np.ndarray, ts: float) -> bool:
        """Feed one full-resolution grey frame; True when the clock was found by this call."""
        if self.rows or y.shape != self._shape:
            return False
        if self._last is not None and ts - self._last_ts < SAMPLE_INTERVAL_S:
            return False
        bands = self._bands(y).astype(np.int16)
        if self._last is not None:
            self._hits[self._n % WINDOW] = np.abs(bands - self._last) > STEP_LEVELS
            self._n += 1
        self._last, self._last_ts = bands, ts
        if self._n < WINDOW:
            return False
        clock = self._hits.sum(axis=0) >= NEEDED
        h = self._shape[0]
        found: list[tuple[float, float]] = []
        for side in (0, 1):
            rows = np.flatnonzero(clock[side].any(axis=1))
            if clock[side].sum() < MIN_PIXELS or rows[-1] - rows[0] + 1 > MAX_LINE_FRACTION * h:
                continue
            offset = 0 if side == 0 else h - self._band
            top = max(0.0, (offset + rows[0]) / h - MARGIN_FRACTION)
            bottom = min(1.0, (offset + rows[-1] + 1) / h + MARGIN_FRACTION)
            found.append((top, bottom))
        self.rows = tuple(found)
        return bool(found)
