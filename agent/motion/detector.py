"""The motion detector: one grey frame in, one `MotionResult` out. Pure: numpy and OpenCV only, no I/O, no clock.

Recipe (all on a frame downscaled to `work_width`, so the cost is fixed whatever the camera sends):
grey (the Y plane, as decoded) -> area downscale -> blur -> brightness normalised to the background -> absolute
difference with a running-average background -> per-pixel threshold (base + learned noise) -> masks -> dilate ->
contours -> blobs above the minimum area. The score is the changed fraction of the unmasked area.

Three guards, all on by default, make it usable on village cameras:

* Global-change guard. Each frame's gain is matched to the background over the pixels that were not moving, so
  auto-exposure steps, breathing and lights switched on cancel out. A frame whose changed fraction is still huge
  (the infra-red night switch, a lamp lighting half the scene) is vetoed: no motion, and the background is
  replaced by that frame. For `settle_s` afterwards frames are compared with the previous frame, so an exposure
  ramp is not motion while a person walking in during or just after the change still is.
* Noise map. A per-pixel running mean of the difference, learned over `noise_tau_s`, raises the threshold where
  pixels change all the time (leaves, water, flags, sensor noise at night, edges of a swaying pole); a person is
  far more different from the background than the sway of a tree is, so they still count.
* OSD clock mask, learned (see `osd.py`), plus configured masks.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np

from agent.models import Box, MotionResult
from agent.motion.guard import fit_tone
from agent.motion.masks import polygon_mask
from agent.motion.osd import OsdLearner
from agent.motion.settings import MotionSettings

NOISE_UPDATE_S = 0.5  # s between noise-map updates (the map averages over noise_tau_s, 10 s by default)
MAX_DT_S = 5.0  # s; a longer gap between frames (a reconnect) must not make one frame the whole background
CLIP_LEVELS = (5, 250)  # grey levels at which a camera's output is crushed or saturated
CLIP_CHECK_GAIN = 0.05  # relative gain change above which clipped pixels are looked for
TONE_REBASE_GAIN = 0.2  # |gain - 1| above this (a 25 % light step) re-bases the background; +-10 % breathing does not
TONE_REFIT_LEVELS = 1.0  # grey levels the picture's mean may move before the tone fit is redone
TONE_REFIT_S = 1.0  # s after which it is redone anyway: the background drifts too
SPREAD_VETO = 0.7  # fraction of the image spanned by the changed pixels; objects are compact, light is everywhere
_KERNEL = np.ones((3, 3), np.uint8)


class _ToneFit(NamedTuple):
    """The last tone fit and what it was made from, so that a steady picture need not be fitted again."""

    level: float  # the picture's mean grey level
    ts: float
    gain: float
    offset: float
    mask_half: np.ndarray  # the static mask it was measured over (compared by identity)


def _half(img: np.ndarray) -> np.ndarray:
    """About every other row and column (nearest-neighbour halving, one native call): a quarter of the pixels gives the
    tone fit the same quantiles."""
    h, w = img.shape
    return cv2.resize(img, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_NEAREST)


def _spread(changed: np.ndarray) -> float:
    """Fraction of the image covered by the bounding box of all changed pixels."""
    _, _, w, h = cv2.boundingRect(changed)
    return (w * h) / changed.size

SUPPRESSED_WARMUP = "warmup"
SUPPRESSED_GLOBAL = "global_change"


class MotionDetector:
    """Stateful detector for one camera. Not thread-safe; each camera pipeline owns one."""

    def __init__(self, settings: MotionSettings | None = None) -> None:
        self.settings = settings or MotionSettings()
        self._shape: tuple[int, int] | None = None  # working (h, w)
        self._bg: np.ndarray | None = None
        self.reset()

    # -- state ---------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the background and everything learned (after a reconnect to a different stream, say)."""
        self._shape = None
        self._expected_input: tuple[int, ...] = ()
        self._bg = None
        self._noise: np.ndarray | None = None
        self._base: np.ndarray | None = None
        self._valid: np.ndarray | None = None  # 255 where analysed (not masked)
        self._n_valid = 1
        # Valid and not moving in the last frame: where gain is measured. Only its half-resolution copy is read;
        # the mask itself is kept to recognise it (most frames pass the same `_valid` again).
        self._static: np.ndarray | None = None
        self._static_half: np.ndarray | None = None
        self._zones: list[tuple[str, np.ndarray]] = []
        self._osd: OsdLearner | None = None
        self._start_ts = 0.0
        self._prev_ts = 0.0
        self._settle_until = -math.inf
        self._tone: _ToneFit | None = None

    @property
    def osd_boxes(self) -> tuple[tuple[float, float, float, float], ...]:
        """The learned clock line(s) as (left, top, right, bottom) fractions of the image; () while none."""
        return () if self._osd is None else self._osd.boxes

    @property
    def noise(self) -> np.ndarray | None:
        """The learned per-pixel noise (grey levels, working grid); for tuning tools and tests."""
        return self._noise

    def _init_geometry(self, h: int, w: int, ts: float) -> None:
        s = self.settings
        ww = min(s.work_width, w)
        wh = max(8, round(h * ww / w))
        self._shape = (wh, ww)
        self._base = np.full((wh, ww), s.threshold, np.uint8)
        self._thr = self._base.copy()  # base + gain x noise, rebuilt whenever the noise map is updated
        self._noise_ts = ts
        self._noise = np.zeros((wh, ww), np.float32)
        self._zones = [(z.name, polygon_mask((z.polygon,), (wh, ww))) for z in s.zones]
        self._osd = OsdLearner((h, w)) if s.auto_osd_mask else None
        self._rebuild_valid()
        self._start_ts = self._prev_ts = ts
        self._tone = None

    def _rebuild_valid(self) -> None:
        assert self._shape is not None
        bands = tuple(((x0, y0), (x1, y0), (x1, y1), (x0, y1)) for x0, y0, x1, y1 in self.osd_boxes)
        excluded = polygon_mask(self.settings.masks + bands, self._shape)
        self._valid = cv2.bitwise_not(excluded)
        self._n_valid = max(1, cv2.countNonZero(self._valid))
        self._set_static(self._valid)
        self._mask_threshold()

    def _mask_threshold(self) -> None:
        """The threshold in use, 255 where masked (no difference exceeds 255): the mask folded in once, instead of
        masking the comparison on every frame."""
        assert self._valid is not None
        thr = self._thr if self.settings.noise_map else self._base
        self._thr_valid = cv2.bitwise_or(thr, cv2.bitwise_not(self._valid))

    def _set_static(self, mask: np.ndarray) -> None:
        """Where the next frame's gain is measured; its half-resolution copy is kept, since most frames reuse it."""
        if mask is not self._static:
            self._static = mask
            self._static_half = _half(mask)

    def _prepare(self, y: np.ndarray) -> np.ndarray:
        assert self._shape is not None
        wh, ww = self._shape
        small = y
        # Halving steps first: OpenCV's area filter is ~7x faster at exactly 2:1 than at 4:1 (same result).
        while small.shape[1] >= 2 * ww and small.shape[0] >= 2 * wh:
            small = cv2.resize(small, (small.shape[1] // 2, small.shape[0] // 2), interpolation=cv2.INTER_AREA)
        if small.shape != self._shape:
            small = cv2.resize(small, (ww, wh), interpolation=cv2.INTER_AREA)
        k = self.settings.blur_ksize
        return cv2.GaussianBlur(small, (k, k), 0) if k > 1 else np.ascontiguousarray(small)

    # -- the step ------------------------------------------------------------------------------------------
    def step(self, y: np.ndarray, ts: float) -> MotionResult:
        """Analyse one frame: `y` is the grey (luma) image, any size, uint8; `ts` its capture time in seconds."""
        if y.ndim != 2 or y.dtype != np.uint8:
            raise ValueError(f"expected a 2-D uint8 grey image, got shape {y.shape} dtype {y.dtype}")
        if not math.isfinite(ts):
            raise ValueError(f"frame timestamp must be finite, got {ts}")
        s = self.settings
        if self._shape is None or self._bg is None or self._expected_input != y.shape:
            self._init_geometry(*y.shape, ts)
            self._expected_input = y.shape
            self._bg = self._prepare(y).astype(np.float32)
            return MotionResult(ts=ts, score=0.0, motion=False, suppressed=SUPPRESSED_WARMUP)
        assert self._noise is not None and self._valid is not None and self._static_half is not None
        small = self._prepare(y)
        dt = ts - self._prev_ts
        dt = min(max(dt, 0.0), MAX_DT_S) if math.isfinite(dt) else 0.0
        self._prev_ts = ts
        bg = self._bg

        # 8-bit images wherever precision allows: a quarter of the memory traffic, and a camera thread wakes to a
        # cold cache for every frame, so bytes touched cost more than arithmetic.
        bg8 = cv2.convertScaleAbs(bg)
        gain, offset = 1.0, 0.0
        if s.global_change_guard:
            gain, offset = self._tone_fit(small, bg8, ts)
        cur = cv2.convertScaleAbs(small, alpha=gain, beta=offset) if (gain, offset) != (1.0, 0.0) else small
        diff = cv2.absdiff(cur, bg8)
        changed = cv2.compare(diff, self._thr_valid, cv2.CMP_GT)  # 0 wherever masked
        if s.global_change_guard and abs(gain - 1.0) > CLIP_CHECK_GAIN:
            changed = self._drop_clipped(changed, small, bg, gain, offset)
        n_changed = cv2.countNonZero(changed)
        score = n_changed / self._n_valid
        if s.global_change_guard and score > s.global_change_fraction / 2 and _spread(changed) > SPREAD_VETO:
            score = max(score, s.global_change_fraction + 1e-6)  # scattered over the whole image: treat as global

        settling = ts < self._settle_until
        tone_step = abs(gain - 1.0) > TONE_REBASE_GAIN
        if s.global_change_guard and (score > s.global_change_fraction or tone_step):
            # A change over most of the image is the camera or the light, not an object: start again from here.
            # So is a large tone step even when the gain fit absorbs most of it: where the picture does not follow
            # the fitted gain (clipped highlights, a lamp's glow, the encoder re-quantising), the leftover would
            # otherwise stay "changed" until the slow background caught up. Moving objects are still found during
            # the settle period, by comparing each frame with the previous one.
            self._bg = small.astype(np.float32)
            self._tone = None
            self._settle_until = ts + s.settle_s
            self._set_static(self._valid)
            return MotionResult(ts=ts, score=score, motion=False, suppressed=SUPPRESSED_GLOBAL)

        if settling:
            self._bg = small.astype(np.float32)  # compare the next frame with this one
            self._tone = None
        else:
            cv2.accumulateWeighted(small, bg, 1.0 - math.exp(-dt / s.background_tau_s))
            if s.noise_map and ts - self._noise_ts >= NOISE_UPDATE_S:
                # Sampled at 2 Hz: plenty for a 10 s average, and the threshold map is rebuilt only then.
                noise_dt = min(ts - self._noise_ts, MAX_DT_S)
                self._noise_ts = ts
                cv2.accumulateWeighted(diff, self._noise, 1.0 - math.exp(-noise_dt / s.noise_tau_s))
                self._thr = cv2.convertScaleAbs(self._noise, alpha=s.noise_gain, beta=s.threshold)
                self._mask_threshold()
        if self._osd is not None and not self._osd.done and self._osd.update(y, ts):
            self._rebuild_valid()
            changed = cv2.bitwise_and(changed, self._valid)
            n_changed = cv2.countNonZero(changed)
            score = n_changed / self._n_valid

        if ts - self._start_ts < s.warmup_s:
            return MotionResult(ts=ts, score=score, motion=False, suppressed=SUPPRESSED_WARMUP)
        if n_changed == 0:
            self._set_static(self._valid)
            return MotionResult(ts=ts, score=0.0, motion=False)
        return self._blobs(changed, ts, score)

    def _tone_fit(self, small: np.ndarray, bg8: np.ndarray, ts: float) -> tuple[float, float]:
        """The frame's gain and offset against the background, refitted only when the picture's mean level moved,
        the static mask changed, the background was replaced or a second passed. On a steady picture the fit comes
        out the same, and on a live camera thread (cold caches after each decode) it is the step's dearest part."""
        assert self._static_half is not None
        level = cv2.mean(small)[0]
        last = self._tone
        if (last is not None and abs(level - last.level) <= TONE_REFIT_LEVELS and 0.0 <= ts - last.ts < TONE_REFIT_S
                and last.mask_half is self._static_half):
            return last.gain, last.offset
        gain, offset = fit_tone(_half(small), _half(bg8), self._static_half)
        self._tone = _ToneFit(level, ts, gain, offset, self._static_half)
        return gain, offset

    def _drop_clipped(
        self, changed: np.ndarray, small: np.ndarray, bg: np.ndarray, gain: float, offset: float
    ) -> np.ndarray:
        """Pixels clipped at white (or crushed at black) in this frame carry no tone: where the background, mapped
        through the same gain, would be clipped too, they are not a change."""
        t = self.settings.threshold
        lo, hi = CLIP_LEVELS
        white = cv2.bitwise_and(cv2.compare(small, hi, cv2.CMP_GE), cv2.compare(bg, hi * gain + offset - t, cv2.CMP_GE))
        black = cv2.bitwise_and(cv2.compare(small, lo, cv2.CMP_LE), cv2.compare(bg, lo * gain + offset + t, cv2.CMP_LE))
        return cv2.bitwise_and(changed, cv2.bitwise_not(cv2.bitwise_or(white, black)))

    def _blobs(self, changed: np.ndarray, ts: float, score: float) -> MotionResult:
        assert self._shape is not None and self._valid is not None
        s = self.settings
        wh, ww = self._shape
        grown = cv2.dilate(changed, _KERNEL, iterations=s.dilate_iterations) if s.dilate_iterations else changed
        contours, _ = cv2.findContours(grown, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_px = s.min_area * wh * ww
        boxes: list[Box] = []
        zones: set[str] = set()
        osd_band = self._osd.band_fraction * wh if self._osd is not None and self._osd.learning else -1.0
        for contour in contours:
            if cv2.contourArea(contour) < min_px:
                continue
            x, y, w, h = cv2.boundingRect(contour)
            if y + h <= osd_band or y >= wh - osd_band:
                continue  # inside a clock band while the clock is still being looked for
            boxes.append(Box(x / ww, y / wh, w / ww, h / wh))
            for name, zone in self._zones:
                if name not in zones and cv2.countNonZero(cv2.bitwise_and(zone[y : y + h, x : x + w],
                                                                          changed[y : y + h, x : x + w])):
                    zones.add(name)
        # Next frame's gain is measured away from what moves now.
        self._set_static(cv2.bitwise_and(self._valid, cv2.bitwise_not(grown)))
        return MotionResult(
            ts=ts,
            score=score,
            motion=bool(boxes),
            boxes=tuple(boxes),
            zones=tuple(sorted(zones)),
        )

