"""The motion detector on synthetic frames: objects count, light and camera behaviour do not."""

from __future__ import annotations

import math
import time

import cv2
import numpy as np
import pytest

from agent.motion import SUPPRESSED_GLOBAL, MotionDetector, MotionSettings, Zone
from tests.motion.scene import Crossing, Noise, background, frames, infrared, luma

FPS = 5.0


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, np.ndarray]:
    bgr = background()
    return bgr, luma(bgr)


def _run(render, duration: float, fps: float = FPS, settings: MotionSettings | None = None):
    """Feed `render(t)` frames with sensor noise; return (detector, [(t, result), ...])."""
    detector, noise, out = MotionDetector(settings), Noise(), []
    for t, ts in frames(duration, fps):
        out.append((t, detector.step(noise.add(render(t)), ts)))
    return detector, out


def _motion_times(results) -> list[float]:
    return [t for t, r in results if r.motion]


def _scaled(grey: np.ndarray, k: float) -> np.ndarray:
    return np.clip(grey.astype(np.float32) * k, 0, 255).astype(np.uint8)


def test_detector_moving_square_detected(scene) -> None:
    """A dark square crossing the image is motion in nearly every frame, with a box where the square is."""
    _, y = scene
    crossing = Crossing(3.0, 7.0)

    def render(t: float) -> np.ndarray:
        g = y.copy()
        crossing.draw(g, t)
        return g

    _, results = _run(render, 9.0)
    moving = [(t, r) for t, r in results if 3.2 <= t <= 6.8]
    assert sum(r.motion for _, r in moving) >= 0.9 * len(moving)
    assert not _motion_times([(t, r) for t, r in results if t < 3.0])
    t, r = moving[len(moving) // 2]
    x_square = (-48 + (640 + 48) * (t - 3.0) / 4.0) / 640
    assert any(abs(b.x - x_square) < 0.1 and abs(b.y - 200 / 360) < 0.1 for b in r.boxes)
    assert 0 < r.score < 0.05


def test_detector_static_scene_quiet(scene) -> None:
    """Sensor noise alone never makes motion."""
    _, y = scene
    _, results = _run(lambda t: y, 10.0)
    assert _motion_times(results) == []


@pytest.mark.parametrize("kind", ["multiply", "add"])
def test_detector_brightness_step_not_motion(scene, kind: str) -> None:
    """A 40 % brightness step (lamp on, multiplicative or additive) is not motion, now or later."""
    _, y = scene
    bright = _scaled(y, 1.4) if kind == "multiply" else np.clip(y.astype(np.int16) + 0.4 * y.mean(), 0, 255)
    bright = bright.astype(np.uint8)
    _, results = _run(lambda t: y if t < 3.0 else bright, 10.0)
    assert _motion_times(results) == []


def test_detector_ir_switch_not_motion(scene) -> None:
    """The switch to infra-red night mode (colour collapses, foliage glows), sudden or over 1 s, is not motion."""
    bgr, y = scene
    ir = infrared(bgr)
    assert np.abs(ir.astype(int) - y).mean() > 10  # the switch really changes the picture

    def ramp(t: float) -> np.ndarray:
        a = min(max(t - 3.0, 0.0), 1.0)
        return (y * (1 - a) + ir * a).astype(np.uint8)

    _, sudden = _run(lambda t: y if t < 3.0 else ir, 10.0)
    _, ramped = _run(ramp, 10.0)
    assert _motion_times(sudden) == []
    assert _motion_times(ramped) == []


def test_detector_exposure_breathing_not_motion(scene) -> None:
    """Auto-exposure breathing of +-10 % with a 4 s period is not motion."""
    _, y = scene
    _, results = _run(lambda t: _scaled(y, 1.0 + 0.1 * math.sin(2 * math.pi * t / 4.0)), 30.0)
    assert _motion_times(results) == []


def test_detector_scene_cut_vetoed(scene) -> None:
    """A change over most of the image is vetoed as a global change, and the new scene is quiet afterwards."""
    _, y = scene
    other = luma(background(seed=5))
    _, results = _run(lambda t: y if t < 3.0 else other, 10.0)
    assert _motion_times(results) == []
    assert any(r.suppressed == SUPPRESSED_GLOBAL for _, r in results)


def test_detector_object_after_light_step_detected(scene) -> None:
    """An object entering 1 s after a 40 % light step is detected within half a second of entering."""
    _, y = scene
    bright, crossing = _scaled(y, 1.4), Crossing(4.0, 8.0)

    def render(t: float) -> np.ndarray:
        g = (y if t < 3.0 else bright).copy()
        crossing.draw(g, t)
        return g

    _, results = _run(render, 10.0)
    times = _motion_times(results)
    assert times and 4.0 <= times[0] <= 4.5
    assert all(t >= 4.0 for t in times)


def test_detector_object_during_light_ramp_detected(scene) -> None:
    """An object crossing while the light ramps up over 2 s is still seen during the ramp."""
    _, y = scene
    crossing = Crossing(3.0, 7.0)

    def render(t: float) -> np.ndarray:
        g = _scaled(y, 1.0 + 0.4 * min(max(t - 3.0, 0.0), 2.0) / 2.0)
        crossing.draw(g, t)
        return g

    _, results = _run(render, 9.0)
    during = [r.motion for t, r in results if 3.4 <= t <= 5.0]
    assert sum(during) >= len(during) // 2


def _sway_renderer(y: np.ndarray, crossing: Crossing | None):
    rng = np.random.default_rng(3)
    texture = cv2.resize(rng.integers(0, 255, (40, 60), np.uint8), (300, 200), interpolation=cv2.INTER_NEAREST)
    texture = cv2.GaussianBlur(texture, (3, 3), 0)

    def render(t: float) -> np.ndarray:
        g = y.copy()
        shift = np.float32([[1, 0, 3.0 * math.sin(2 * math.pi * t / 1.7)], [0, 1, 0]])
        g[100:300, 200:500] = cv2.warpAffine(texture, shift, (300, 200), borderMode=cv2.BORDER_REFLECT)
        if crossing is not None:
            crossing.draw(g, t)
        return g

    return render


def test_detector_swaying_region_learned_and_crossing_seen(scene) -> None:
    """A swaying textured region stops being motion within 30 s; an object crossing it later is still detected."""
    _, y = scene
    detector, results = _run(_sway_renderer(y, Crossing(40.0, 46.0, y=150)), 48.0)
    early = _motion_times([(t, r) for t, r in results if t < 10.0])
    assert early  # the sway does look like motion before it is learned
    assert _motion_times([(t, r) for t, r in results if 30.0 <= t < 40.0]) == []
    crossing = [r.motion for t, r in results if 40.8 <= t <= 45.2]
    assert sum(crossing) >= 0.8 * len(crossing)
    assert detector.noise is not None and float(detector.noise[60:140, 110:240].mean()) > 2.0


def test_detector_mask_hides_motion(scene) -> None:
    """Motion inside a configured mask polygon is ignored; outside it is not."""
    _, y = scene
    crossing = Crossing(2.0, 8.0, y=40)
    settings = MotionSettings(masks=(((0.0, 0.0), (1.0, 0.0), (1.0, 0.3), (0.0, 0.3)),))

    def render(t: float) -> np.ndarray:
        g = y.copy()
        crossing.draw(g, t)
        return g

    _, masked = _run(render, 9.0, settings=settings)
    _, unmasked = _run(render, 9.0)
    assert _motion_times(masked) == []
    assert len(_motion_times(unmasked)) > 10


def test_detector_zones_reported(scene) -> None:
    """Results name the zones the motion touched, and only those."""
    _, y = scene
    gate = Zone("gate", ((0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (0.0, 1.0)))
    yard = Zone("yard", ((0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (0.5, 1.0)))
    sky = Zone("sky", ((0.0, 0.0), (1.0, 0.0), (1.0, 0.3), (0.0, 0.3)))
    crossing = Crossing(2.0, 8.0, y=250)

    def render(t: float) -> np.ndarray:
        g = y.copy()
        crossing.draw(g, t)
        return g

    _, results = _run(render, 9.0, settings=MotionSettings(zones=(gate, yard, sky)))
    zones_by_time = {round(t, 1): r.zones for t, r in results if r.motion}
    assert zones_by_time[3.0] == ("gate",)
    assert zones_by_time[7.0] == ("yard",)
    assert all("sky" not in z for z in zones_by_time.values())


def test_detector_osd_clock_masked_automatically(scene) -> None:
    """A burned-in clock never makes motion, its line is found and masked, and motion elsewhere still counts."""
    _, y = scene
    crossing = Crossing(30.0, 36.0)

    def render(t: float) -> np.ndarray:
        g = y.copy()
        crossing.draw(g, t)
        clock = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(1_700_000_000 + int(t)))
        cv2.putText(g, clock, (10, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.7, 255, 2)
        return g

    detector, results = _run(render, 40.0)
    assert _motion_times([(t, r) for t, r in results if t < 30.0]) == []
    assert len(_motion_times([(t, r) for t, r in results if t >= 30.0])) > 20
    (left, top, right, bottom), = detector.osd_boxes
    assert top <= 12 / 360 and 25 / 360 <= bottom <= 0.12
    assert left < 0.35 and 0.3 < right < 1.0  # hours to seconds of the text line, not the whole width


def test_detector_rejects_colour_input() -> None:
    """A 3-channel frame is a caller bug and raises at once."""
    with pytest.raises(ValueError, match="grey"):
        MotionDetector().step(np.zeros((10, 10, 3), np.uint8), 0.0)


def test_detector_resolution_change_restarts() -> None:
    """A stream that changes resolution restarts learning instead of failing."""
    detector = MotionDetector()
    detector.step(np.full((360, 640), 100, np.uint8), 0.0)
    r = detector.step(np.full((180, 320), 100, np.uint8), 0.2)
    assert not r.motion and r.suppressed == "warmup"


def test_settings_reject_bad_values() -> None:
    """Settings check their ranges at construction."""
    with pytest.raises(ValueError):
        MotionSettings(blur_ksize=4)
    with pytest.raises(ValueError):
        MotionSettings(masks=(((0.0, 0.0), (2.0, 0.0), (1.0, 1.0)),))
    with pytest.raises(ValueError):
        Zone("x", ((0.0, 0.0), (1.0, 1.0)))


@pytest.mark.parametrize("with_clock", [True, False])
def test_osd_learner_releases_its_windows_when_done(scene, with_clock: bool) -> None:
    """Once the clock is found (or the search given up) the learner keeps only its boxes, not its sample windows."""
    from agent.motion.osd import GIVE_UP_SAMPLES, OsdLearner

    _, y = scene
    learner, noise = OsdLearner(y.shape), Noise()
    assert learner.nbytes > 100_000  # 640x360, before the history and last sample grow: the premise of this test
    for t, ts in frames(GIVE_UP_SAMPLES + 5.0, FPS):
        g = y.copy()
        if with_clock:
            clock = time.strftime("%H:%M:%S", time.gmtime(1_700_000_000 + int(t)))
            cv2.putText(g, clock, (10, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.7, 255, 2)
        learner.update(noise.add(g), ts)
        if learner.done:
            break
    assert learner.done
    assert bool(learner.boxes) is with_clock
    assert learner.nbytes == 0
    assert learner.update(y, 1e12) is False  # and it stays done
