"""Brightness normalisation for the global-change guard: map the frame's tones onto the background's.

Cameras change brightness in two ways: multiplicative (exposure, gain, a lamp on a lit scene) and, roughly,
additive (a flood of ambient light, the black level shifting when infra-red switches on). A line
`frame * gain + offset` fitted through two quantiles (20 % and 80 %) of the static pixels covers both, and
quantiles, unlike mean and standard deviation, barely move when an object covers a tenth of the image.
"""

from __future__ import annotations

from bisect import bisect_left

import cv2
import numpy as np

QUANTILES = (0.2, 0.8)
MIN_SPREAD = 8.0  # grey levels between the quantiles; a flatter frame (fog, black) gives no reliable gain
GAIN_LIMITS = (0.25, 4.0)  # a steeper change is a camera switching mode; the veto handles it
_RANGE = [0, 256]


def _quantiles(cdf: list[float]) -> tuple[float, float] | None:
    """QUANTILES of a histogram given as its cumulative counts, interpolated inside the bin: sub-level precision."""
    total = cdf[-1]
    if total <= 0:
        return None
    out = []
    for q in QUANTILES:
        target = q * total
        level = bisect_left(cdf, target)
        below = cdf[level - 1] if level > 0 else 0.0
        out.append(level + (target - below) / ((cdf[level] - below) or 1.0))
    return out[0], out[1]


def fit_tone(small: np.ndarray, bg8: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(gain, offset) such that `small * gain + offset` has the background's tones over `mask`; (1, 0) if unsure.

    The three images are equal-sized, contiguous uint8; the detector passes every other row and column of its
    working images (a quarter of the pixels gives the same quantiles) and keeps the subsampled mask between
    frames."""
    hc = cv2.calcHist([small], [0], mask, [256], _RANGE)
    hb = cv2.calcHist([bg8], [0], mask, [256], _RANGE)
    # One cumulative sum for both, then plain floats: the detector runs this for every analysed frame, on a cold
    # cache, where each numpy call costs more than its arithmetic.
    cdf_c, cdf_b = np.cumsum(np.stack((hc.reshape(-1), hb.reshape(-1))), axis=1).tolist()
    qc, qb = _quantiles(cdf_c), _quantiles(cdf_b)
    if qc is None or qb is None:
        return 1.0, 0.0
    (c0, c1), (b0, b1) = qc, qb
    spread_c, spread_b = c1 - c0, b1 - b0
    if spread_c < MIN_SPREAD or spread_b < MIN_SPREAD:
        return 1.0, 0.0
    gain = min(max(spread_b / spread_c, GAIN_LIMITS[0]), GAIN_LIMITS[1])
    offset = (b0 + b1) / 2 - gain * (c0 + c1) / 2
    return gain, offset
