"""Brightness normalisation for the global-change guard: map the frame's tones onto the background's.

Cameras change brightness in two ways: multiplicative (exposure, gain, a lamp on a lit scene) and, roughly,
additive (a flood of ambient light, the black level shifting when infra-red switches on). A line
`frame * gain + offset` fitted through two quantiles (20 % and 80 %) of the static pixels covers both, and
quantiles, unlike mean and standard deviation, barely move when an object covers a tenth of the image.
"""

from __future__ import annotations

import cv2
import numpy as np

QUANTILES = (0.2, 0.8)
MIN_SPREAD = 8.0  # grey levels between the quantiles; a flatter frame (fog, black) gives no reliable gain
GAIN_LIMITS = (0.25, 4.0)  # a steeper change is a camera switching mode; the veto handles it
_RANGE = [0, 256]


def _quantiles(hist: np.ndarray) -> tuple[float, float] | None:
    cdf = np.cumsum(hist)
    total = float(cdf[-1])
    if total <= 0:
        return None
    out = []
    for q in QUANTILES:
        target = q * total
        level = int(np.searchsorted(cdf, target))
        below = float(cdf[level - 1]) if level > 0 else 0.0
        inside = float(hist[level]) or 1.0
        out.append(level + (target - below) / inside)  # interpolate inside the bin: sub-level precision
    return out[0], out[1]


def fit_tone(small: np.ndarray, bg8: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(gain, offset) such that `small * gain + offset` has the background's tones over `mask`; (1, 0) if unsure."""
    # Every other row and column: a quarter of the pixels gives the same quantiles at a quarter of the cost.
    sub = np.ascontiguousarray(mask[::2, ::2])
    hc = cv2.calcHist([np.ascontiguousarray(small[::2, ::2])], [0], sub, [256], _RANGE).ravel()
    hb = cv2.calcHist([np.ascontiguousarray(bg8[::2, ::2])], [0], sub, [256], _RANGE).ravel()
    qc, qb = _quantiles(hc), _quantiles(hb)
    if qc is None or qb is None:
        return 1.0, 0.0
    spread_c, spread_b = qc[1] - qc[0], qb[1] - qb[0]
    if spread_c < MIN_SPREAD or spread_b < MIN_SPREAD:
        return 1.0, 0.0
    gain = min(max(spread_b / spread_c, GAIN_LIMITS[0]), GAIN_LIMITS[1])
    offset = (qb[0] + qb[1]) / 2 - gain * (qc[0] + qc[1]) / 2
    return gain, offset
