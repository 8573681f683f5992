"""The renderer and its ground truth: periodic, seam-free, and saying exactly when actors move."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.simulator.scenario import parse_scenario
from agent.simulator.scene import actor_box, ground_truth, make_context, osd_text, render_frame, wall_intervals

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
