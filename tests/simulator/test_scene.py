"""The renderer and its ground truth: periodic, seam-free, and saying exactly when actors move."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.simulator.scenario import SceneSpec, parse_scenario
from agent.simulator.scene import (
    IR_NOISE_FACTOR,
    actor_box,
    ground_truth,
    make_background,
    make_context,
    osd_text,
    render_frame,
    wall_intervals,
)

SCENE = parse_scenario({
    "scenes": {"s": {"loop_s": 4, "actors": [{"name": "p", "start_s": 1, "duration_s": 2}],
                     "events": [{"kind": "exposure_drift", "amplitude": 0.1, "period_s": 4},
                                {"kind": "sway", "period_s": 1, "amplitude": 0.02}]}},
    "cameras": [{"scene": "s"}]}).scenes["s"]


def test_scene_loop_seam_adds_no_motion() -> None:
    """Last frame to first frame differs no more than any quiet pair of neighbouring frames."""
    ctx = make_context(SCENE, 160, 96, 5)
    frames = [render_frame(ctx, i).astype(np.int16)[20:] for i in range(ctx.frames)]  # below the OSD

    def diff(a: int, b: int) -> float:
        return float(np.abs(frames[a] - frames[b]).mean())

    quiet = [diff(i, i + 1) for i in range(ctx.frames - 1) if not (4 <= i <= 15)]  # actor visible 1-3 s
    assert diff(ctx.frames - 1, 0) <= max(quiet) * 1.1


def test_scene_actor_visible_only_inside_its_interval() -> None:
    """The actor's box exists exactly while the ground truth says it moves, and crosses the frame."""
    actor = SCENE.actors[0]
    assert actor_box(actor, 0.99, 640, 360) is None and actor_box(actor, 3.0, 640, 360) is None
    xs = [actor_box(actor, t, 640, 360)[0] for t in (1.0, 2.0, 2.99)]  # type: ignore[index]
    assert xs[0] < 0 < xs[1] < 640 and xs[0] < xs[1] < xs[2]
    assert ground_truth(SCENE, 15, 2.0)["actors"][0]["moving"] == [1.0, 3.0]


def test_scene_osd_clock_changes_every_second() -> None:
    """The on-screen clock shows loop time and ticks each second."""
    assert osd_text(0.0) == "2026-01-01 00:00:00"
    assert osd_text(0.99) != osd_text(1.0) == "2026-01-01 00:00:01"


def test_scene_wall_intervals_repeat_each_loop() -> None:
    """Ground truth unrolled on the wall clock repeats every loop from the anchor."""
    gt = ground_truth(SCENE, 15, 2.0)
    items = wall_intervals(gt, anchor=1000.0, since=1000.0, until=1010.0)
    assert [(i["start"], i["end"]) for i in items] == [(1001.0, 1003.0), (1005.0, 1007.0), (1009.0, 1011.0)]


def test_scene_real_clip_replaces_renderer(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scene with `clip:` is encoded from the real video at the scene's fps and size, OSD drawn over it."""
    import av
    import cv2

    from agent.simulator.encode import encode_stream

    monkeypatch.setenv("MATTHAN_SIM_CACHE", str(tmp_path))
    clip = shared_data / "parking-lot-768x432.mp4"
    scene = parse_scenario({"scenes": {"lot": {"loop_s": 4, "clip": str(clip), "clip_start_s": 2, "noise": 0}},
                            "cameras": [{"scene": "lot", "fps": 5}]}).scenes["lot"]
    stream = encode_stream(scene, fps=5, keyframe_s=2.0, size=(320, 180))
    assert stream.ground_truth()["clip"]["path"] == str(clip)
    cc = av.CodecContext.create("h264", "r")
    packets = [*cc.parse(stream.es_path.read_bytes()), *cc.parse(None)]  # None flushes the parser's last AU
    frames = [f.to_ndarray(format="gray") for p in [*packets, None] for f in cc.decode(p)]
    assert len(frames) == 20 and frames[0].shape == (180, 320)
    with av.open(str(clip)) as c:
        original = next(f for f in c.decode(video=0) if f.time >= 2.0).to_ndarray(format="gray")
    expected = cv2.resize(original, (320, 180), interpolation=cv2.INTER_AREA).astype(np.int16)
    assert np.abs(frames[0][30:].astype(np.int16) - expected[30:]).mean() < 12  # below the OSD


# -- what the frames contain: texture, noise, global events, actor sizes ----------------------------------------
W, H, FPS = 320, 180, 10
BELOW_OSD = slice(int(0.12 * H), H)  # the OSD clock covers the top 10 % (ground_truth["osd"]["region"])
GROUND = slice(H // 2, H)  # below the horizon: no sky, so brightness gains up to 1.4 do not saturate


def scene_of(**body: object) -> SceneSpec:
    """A 4 s scene with the given keys (actors, events, noise), as the scenario parser builds it."""
    return parse_scenario({"scenes": {"s": {"loop_s": 4, **body}}, "cameras": [{"scene": "s"}]}).scenes["s"]


def frames_at(scene: SceneSpec, *indices: int) -> list[np.ndarray]:
    """The frames at these indices as int16 BGR, rendered in order from a fresh context."""
    ctx = make_context(scene, W, H, FPS)
    return [render_frame(ctx, i).astype(np.int16) for i in indices]


def test_scene_background_is_textured() -> None:
    """The street has contrast overall, and even a flat-painted patch of sky carries sensor-like texture."""
    bg = make_background(scene_of(), W, H)
    grey = bg @ np.float32([0.114, 0.587, 0.299])
    assert grey.std() > 20
    sky = grey[: int(0.1 * H), W // 2:]  # right of the OSD, above every roof
    assert sky.std() > 5, "flat paint would have no texture at all"


def test_scene_quiet_frames_differ_by_sensor_noise() -> None:
    """Two frames of an empty scene differ at most pixels, by about sqrt(2) x the scene's noise sigma."""
    a, b = frames_at(scene_of(noise=3.0), 0, 1)
    diff = (a - b)[BELOW_OSD]
    assert (diff != 0).mean() > 0.8
    assert 3.0 * 2**0.5 * 0.85 < diff.std() < 3.0 * 2**0.5 * 1.15
    still = frames_at(scene_of(noise=0.0), 0, 1)
    assert not (still[0] - still[1])[BELOW_OSD].any(), "without noise an empty scene would not change"


def test_scene_ir_night_is_grey_and_noisier() -> None:
    """During ir_night B = G = R everywhere, and frame-to-frame noise is about IR_NOISE_FACTOR times the day's."""
    scene = scene_of(noise=3.0, events=[{"kind": "ir_night", "start_s": 2, "end_s": 3}])
    day0, day1, ir0, ir1 = frames_at(scene, 5, 6, 25, 26)
    assert (ir0[..., 0] == ir0[..., 1]).all() and (ir0[..., 1] == ir0[..., 2]).all()
    assert (day0[..., 0] != day0[..., 2]).mean() > 0.5  # the day frame is in colour
    ratio = (ir1 - ir0)[GROUND].std() / (day1 - day0)[GROUND].std()
    assert 0.8 * IR_NOISE_FACTOR < ratio < 1.2 * IR_NOISE_FACTOR


@pytest.mark.parametrize("gain", [0.6, 1.4])
def test_scene_light_step_scales_mean_brightness(gain: float) -> None:
    """During a light_step the mean brightness is gain x the mean before it (within 2 %)."""
    scene = scene_of(events=[{"kind": "light_step", "start_s": 2, "end_s": 3, "gain": gain}])
    before, during, after = frames_at(scene, 15, 25, 35)
    ratio = during[GROUND].mean() / before[GROUND].mean()
    assert abs(ratio / gain - 1) < 0.02, ratio
    assert abs(after[GROUND].mean() / before[GROUND].mean() - 1) < 0.005  # the step reverts at end_s


def _actor_extent(kind: str) -> tuple[int, int]:
    """Width and height in pixels of what an actor of this kind changes in a noise-free frame."""
    scene = scene_of(noise=0.0, actors=[{"name": "a", "kind": kind, "start_s": 0, "duration_s": 4, "y": 0.9}])
    ctx = make_context(scene, W, H, FPS)
    frame = render_frame(ctx, 20).astype(np.int16)  # half-way across
    empty = np.clip(ctx.background, 0, 255).astype(np.uint8).astype(np.int16)
    changed = (np.abs(frame - empty).max(axis=2) > 10)
    changed[: BELOW_OSD.start] = False
    rows, cols = np.nonzero(changed)
    return int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1)


def test_scene_vehicle_is_wider_than_person() -> None:
    """A vehicle-sized actor is several times wider than a person-sized one; a person is taller than wide."""
    person_w, person_h = _actor_extent("person")
    vehicle_w, vehicle_h = _actor_extent("vehicle")
    assert vehicle_w > 3 * person_w
    assert person_h > 2 * person_w and vehicle_w > vehicle_h


def test_scene_sway_moves_only_its_region() -> None:
    """Sway changes its region by far more than noise; elsewhere frames differ no more than in a scene without it."""
    region = (0.6, 0.3, 0.3, 0.4)
    swaying = scene_of(events=[{"kind": "sway", "region": list(region), "amplitude": 0.03, "period_s": 2}])
    calm = scene_of()  # same seed, so the same background and noise
    # t = 0 and t = 0.5 s: no shift, then the full amplitude.
    a, b = frames_at(swaying, 0, 5)
    c, d = frames_at(calm, 0, 5)
    x0, y0 = int(region[0] * W), int(region[1] * H)
    x1, y1 = x0 + int(region[2] * W), y0 + int(region[3] * H)
    inside = np.zeros((H, W), bool)
    inside[y0:y1, x0:x1] = True
    outside = ~inside
    outside[: BELOW_OSD.start] = False
    moved = np.abs(b - a).max(axis=2)
    noise_level = np.abs(d - c).max(axis=2)[outside].mean()
    assert moved[inside].mean() > 3 * noise_level
    assert moved[outside].mean() <= 1.1 * noise_level


def test_scene_exposure_drift_changes_mean_slowly() -> None:
    """exposure_drift swings the mean by about +-amplitude over its period, never jumping between frames."""
    amplitude, period_s = 0.1, 4.0
    scene = scene_of(events=[{"kind": "exposure_drift", "amplitude": amplitude, "period_s": period_s}])
    means = np.array([f[GROUND].mean() for f in frames_at(scene, *range(int(period_s * FPS)))])
    assert abs(means.max() / means.min() - (1 + amplitude) / (1 - amplitude)) < 0.03
    steepest = 2 * np.pi * amplitude / (period_s * FPS)  # largest relative change of the gain per frame
    steps = np.abs(np.diff(means)) / means[:-1]
    assert steps.max() < 1.2 * steepest
    assert steps.max() < 0.1 * (means.max() - means.min()) / means.min()
