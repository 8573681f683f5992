"""The event tracker: hysteresis in seconds, one event per crossing whatever the frame rate."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from agent.models import Box, EventKind, MotionResult
from agent.motion import EventTracker, MotionDetector, TrackerSettings, encode_jpeg, union_box
from tests.motion.scene import Crossing, Noise, background, frames, luma

T0 = 1_700_000_000.0


def _ids():
    counter = itertools.count(1)
    return lambda: f"ev-{next(counter)}"


def _feed(tracker: EventTracker, pattern: list[bool], fps: float, box: Box | None = None):
    events = []
    for i, motion in enumerate(pattern):
        boxes = (box or Box(0.1, 0.1, 0.2, 0.2),) if motion else ()
        events += tracker.update(MotionResult(ts=T0 + i / fps, score=0.02 if motion else 0.0, motion=motion,
                                              boxes=boxes))
    return events


def test_tracker_starts_after_min_motion() -> None:
    """An event starts only once motion has lasted min_motion_s, stamped with the first motion frame's time."""
    tracker = EventTracker("cam", TrackerSettings(min_motion_s=1.0), new_id=_ids())
    events = _feed(tracker, [False] * 5 + [True] * 6, fps=5.0)
    assert [e.kind for e in events] == [EventKind.START]
    assert events[0].start_ts == pytest.approx(T0 + 1.0)
    assert events[0].ts == pytest.approx(T0 + 2.0)
    assert events[0].camera_id == "cam" and events[0].event_id == "ev-1"


def test_tracker_short_blip_ignored() -> None:
    """Motion shorter than min_motion_s makes no event."""
    tracker = EventTracker("cam", TrackerSettings(min_motion_s=1.0))
    assert _feed(tracker, [True, True, False] * 10, fps=5.0) == []
    assert not tracker.active


def test_tracker_ends_after_gap_with_last_motion_time() -> None:
    """The event ends event_gap_s after its last motion; end_ts is that last motion frame's capture time."""
    tracker = EventTracker("cam", TrackerSettings(min_motion_s=0.0, event_gap_s=2.0), new_id=_ids())
    events = _feed(tracker, [True] * 10 + [False] * 15, fps=5.0)
    assert [e.kind for e in events] == [EventKind.START, EventKind.END]
    end = events[1]
    assert end.end_ts == pytest.approx(T0 + 9 / 5)
    assert end.ts == pytest.approx(T0 + 9 / 5 + 2.0)
    assert end.frames_analysed == 19  # 10 with motion, 9 quiet; the frame that ends it is not part of it


def test_tracker_gap_shorter_than_event_gap_keeps_event() -> None:
    """Motion resuming within event_gap_s continues the same event."""
    tracker = EventTracker("cam", TrackerSettings(min_motion_s=0.0, event_gap_s=2.0), new_id=_ids())
    events = _feed(tracker, [True] * 5 + [False] * 5 + [True] * 5 + [False] * 20, fps=5.0)
    assert [e.kind for e in events] == [EventKind.START, EventKind.END]
    assert {e.event_id for e in events} == {"ev-1"}


def test_tracker_max_length_starts_new_id() -> None:
    """Continuous motion longer than max_event_s is cut: the old id ends and a new id starts at once."""
    tracker = EventTracker("cam", TrackerSettings(min_motion_s=0.0, event_gap_s=1.0, max_event_s=10.0),
                           new_id=_ids())
    events = _feed(tracker, [True] * 125, fps=5.0)
    kinds = [(e.kind, e.event_id) for e in events if e.kind != EventKind.UPDATE]
    assert kinds[:3] == [(EventKind.START, "ev-1"), (EventKind.END, "ev-1"), (EventKind.START, "ev-2")]
    assert events[1].end_ts - events[1].start_ts == pytest.approx(10.0)


def test_tracker_peak_union_and_zones() -> None:
    """An event carries its peak score and box, the union of all boxes, and every zone touched."""
    tracker = EventTracker("cam", TrackerSettings(min_motion_s=0.0, event_gap_s=1.0))
    results = [
        MotionResult(T0, 0.01, True, (Box(0.1, 0.1, 0.1, 0.1),), ("gate",)),
        MotionResult(T0 + 0.2, 0.05, True, (Box(0.5, 0.5, 0.2, 0.2),), ("yard",)),
        MotionResult(T0 + 0.4, 0.02, True, (Box(0.3, 0.3, 0.1, 0.1),), ()),
    ]
    events = [e for r in results for e in tracker.update(r)]
    events += tracker.update(MotionResult(T0 + 2.0, 0.0, False))
    end = events[-1]
    assert end.kind == EventKind.END
    assert end.peak_score == pytest.approx(0.05) and end.peak_ts == pytest.approx(T0 + 0.2)
    assert end.peak_box == Box(0.5, 0.5, 0.2, 0.2)
    assert end.union_box is not None and end.union_box.as_list() == [0.1, 0.1, 0.6, 0.6]
    assert end.zones == ("gate", "yard")


def test_tracker_updates_rate_limited() -> None:
    """A long event sends an update at most every update_interval_s, and only when something changed."""
    tracker = EventTracker("cam", TrackerSettings(min_motion_s=0.0, event_gap_s=1.0, update_interval_s=2.0))
    events = []
    for i in range(50):  # 10 s at 5 fps, the box grows every frame
        events += tracker.update(MotionResult(T0 + i / 5, 0.01 + i * 1e-4, True, (Box(0.1, 0.1, 0.01 * (i + 1), 0.1),)))
    updates = [e for e in events if e.kind == EventKind.UPDATE]
    assert 3 <= len(updates) <= 5
    assert all(b.ts - a.ts >= 2.0 - 1e-6 for a, b in itertools.pairwise(updates))


def test_tracker_tick_and_flush_end_events() -> None:
    """tick() ends an event when frames stop arriving; flush() ends a running event at shutdown."""
    tracker = EventTracker("cam", TrackerSettings(min_motion_s=0.0, event_gap_s=2.0))
    _feed(tracker, [True] * 3, fps=5.0)
    assert tracker.tick(T0 + 1.0) == []
    (end,) = tracker.tick(T0 + 10.0)
    assert end.kind == EventKind.END and not tracker.active
    _feed(tracker, [True] * 3, fps=5.0)
    (flushed,) = tracker.flush(T0 + 1.0)
    assert flushed.kind == EventKind.END and tracker.flush(T0 + 2.0) == []


def test_union_box_empty_is_none() -> None:
    """The union of no boxes is None."""
    assert union_box(()) is None


@pytest.mark.parametrize("fps", [1.0, 5.0, 15.0])
def test_tracker_one_event_per_crossing(fps: float) -> None:
    """Detector and tracker together make exactly one event per crossing at 1, 5 and 15 fps."""
    y, noise = luma(background()), Noise()
    crossings = [Crossing(5.0, 11.0), Crossing(30.0, 36.0, y=120), Crossing(55.0, 59.0, y=260, value=230)]
    detector = MotionDetector()
    tracker = EventTracker("cam", TrackerSettings(min_motion_s=0.5, event_gap_s=5.0))
    events = []
    for t, ts in frames(75.0, fps):
        g = y.copy()
        for c in crossings:
            c.draw(g, t)
        events += tracker.update(detector.step(noise.add(g), ts))
    starts = [e for e in events if e.kind == EventKind.START]
    ends = [e for e in events if e.kind == EventKind.END]
    assert len(starts) == 3 and len(ends) == 3
    for c, s, e in zip(crossings, starts, ends, strict=True):
        assert c.t0 - 1 / fps <= s.start_ts - T0 <= c.t0 + 1.5
        assert c.t1 - 1.5 <= e.end_ts - T0 <= c.t1 + 1 / fps + 0.5
        assert s.event_id == e.event_id


def test_snapshot_encode_jpeg_downscales() -> None:
    """Snapshots are JPEG, at most max_width wide, from grey or colour frames."""
    from agent.motion import SnapshotSettings

    data = encode_jpeg(background(), SnapshotSettings(max_width=320, quality=70))
    assert data[:2] == b"\xff\xd8"
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert img.shape == (180, 320, 3)
    assert encode_jpeg(luma(background()))[:2] == b"\xff\xd8"
    with pytest.raises(ValueError):
        SnapshotSettings(quality=0)
