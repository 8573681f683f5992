"""The camera pipeline against the project's simulated cameras and their ground truth (RTSP on loopback).

Every scripted crossing must overlap a motion event and every event must overlap a crossing; a scene with only a
light step, the infra-red night switch and exposure breathing must give no event at all. The simulator burns a
clock into the picture, so this also exercises the learned OSD mask.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from agent.camera import CameraPipeline, PipelineSettings
from agent.models import DecodeMode, EventKind, MotionEvent
from tests.camera.reports import Collector
from tests.rig.sim import running_cluster

pytestmark = [pytest.mark.rtsp, pytest.mark.slow]

WATCH_S = 50.0  # two 20 s loops after start-up, and one crossing after the swaying tree is learned
SETTLE_S = 3.0  # ignore the first seconds (connection, background, first GOP)
SLACK_S = 1.5  # arrival-time stamps versus the simulator's wall clock

SCENARIO = {
    "scenes": {
        "light": {"loop_s": 20, "seed": 3, "actors": [], "events": [
            {"kind": "light_step", "start_s": 3, "end_s": 8, "gain": 1.5},
            {"kind": "ir_night", "start_s": 11, "end_s": 16},
            {"kind": "exposure_drift", "amplitude": 0.1, "period_s": 5},
        ]},
        "tree": {"loop_s": 20, "seed": 5, "actors": [
            {"name": "walker", "kind": "person", "start_s": 4, "duration_s": 6, "y": 0.62, "direction": "rtl"},
        ], "events": [
            {"kind": "sway", "amplitude": 0.01, "period_s": 2, "region": [0.6, 0.15, 0.3, 0.45]},
        ]},
    },
    "cameras": [
        {"name": "tree", "scene": "tree"},
        {"name": "street-full", "scene": "street"},
        {"name": "street-adaptive", "scene": "street", "phase_s": 7},
        {"name": "light", "scene": "light"},
    ],
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with running_cluster(SCENARIO) as c:
        yield c


@pytest.fixture(scope="module")
def watched(cluster: Any) -> dict[str, tuple[list[MotionEvent], float, float]]:
    """Run one pipeline per camera for WATCH_S, all at once; per camera its events and the watched interval."""
    modes = {"street-full": DecodeMode.FULL, "street-adaptive": DecodeMode.ADAPTIVE, "light": DecodeMode.ADAPTIVE,
             "tree": DecodeMode.FULL}
    stop = threading.Event()
    runs: dict[str, tuple[Collector[MotionEvent], threading.Thread]] = {}
    start = time.time()
    for name, mode in modes.items():
        events: Collector[MotionEvent] = Collector()
        settings = PipelineSettings(name, cluster.info(name).rtsp_uri(with_credentials=True),
                                    source=_source(mode))
        pipeline = CameraPipeline(settings, on_event=events, on_report=lambda r: None)
        thread = threading.Thread(target=pipeline.run, args=(stop,), daemon=True)
        thread.start()
        runs[name] = (events, thread)
    stop.wait(WATCH_S)  # the observation itself is real time: the simulator plays its scenes at 15 fps
    stop.set()
    end = time.time()
    for _, thread in runs.values():
        thread.join(15)
    return {name: (events.values(), start, end) for name, (events, _) in runs.items()}


def _source(mode: DecodeMode):
    from agent.video import SourceSettings

    return SourceSettings(decode_mode=mode)


def _intervals(events: list[MotionEvent]) -> list[tuple[float, float]]:
    ends = {e.event_id: e for e in events if e.kind == EventKind.END}
    return [(e.start_ts, ends[e.event_id].end_ts or e.ts) for e in events if e.kind == EventKind.START
            and e.event_id in ends]


@pytest.mark.parametrize("camera", ["street-full", "street-adaptive"])
def test_simulator_every_crossing_makes_an_event(cluster: Any, watched, camera: str) -> None:
    """Each crossing in the ground truth overlaps an event, and each event overlaps a crossing."""
    events, start, end = watched[camera]
    crossings = [c for c in cluster.info(camera).truth_between(start + SETTLE_S, end - 6.0) if c["kind"] == "actor"
                 and c["start"] >= start + SETTLE_S]
    spans = _intervals(events)
    assert len(crossings) >= 3, crossings
    story = f"crossings {[(round(c['start'] - start, 1), round(c['end'] - start, 1)) for c in crossings]} " \
            f"events {[(round(a - start, 1), round(b - start, 1)) for a, b in spans]}"
    for c in crossings:
        assert any(a <= c["end"] + SLACK_S and b >= c["start"] - SLACK_S for a, b in spans), story
    truth = cluster.info(camera).truth_between(start, end + 10)
    for a, b in spans:
        assert any(a <= t["end"] + SLACK_S and b >= t["start"] - SLACK_S for t in truth if t["kind"] == "actor"), story
    for e in events:
        assert e.snapshot_path is None  # no store given: no file claimed


def test_simulator_light_ir_and_exposure_make_no_event(cluster: Any, watched) -> None:
    """Light steps, the IR night switch and exposure breathing over two loops produce no motion event."""
    events, start, end = watched["light"]
    changes = [c for c in cluster.info("light").truth_between(start, end) if c["kind"] in ("light_step", "ir_night")]
    assert len(changes) >= 3  # the scene really did change while we watched
    assert [e for e in events if e.kind == EventKind.START] == []


def test_simulator_swaying_tree_learned_walker_still_seen(cluster: Any, watched) -> None:
    """A swaying tree stops making events within 30 s, while a walker crossing in front of it still makes one."""
    events, start, end = watched["tree"]
    spans = [(a, b) for a, b in _intervals(events) if a >= start + 30.0]
    crossings = [c for c in cluster.info("tree").truth_between(start + 30.0, end - 6.0) if c["kind"] == "actor"
                 and c["start"] >= start + 30.0]
    story = f"crossings {[(round(c['start'] - start, 1), round(c['end'] - start, 1)) for c in crossings]} " \
            f"events {[(round(a - start, 1), round(b - start, 1)) for a, b in _intervals(events)]}"
    assert crossings, story
    for c in crossings:
        assert any(a <= c["end"] + SLACK_S and b >= c["start"] - SLACK_S for a, b in spans), story
    truth = [t for t in cluster.info("tree").truth_between(start, end + 10) if t["kind"] == "actor"]
    for a, b in spans:
        assert any(a <= t["end"] + SLACK_S and b >= t["start"] - SLACK_S for t in truth), story
