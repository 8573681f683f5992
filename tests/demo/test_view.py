"""The station's view of the agent, folded from MQTT messages exactly as docs/mqtt.md describes them."""

from __future__ import annotations

import json

import pytest

from agent.demo.view import StationView, classify, snapshot_filename

P = "matthan/v1/demo/demo-agent"


def _j(**body: object) -> bytes:
    return json.dumps(body).encode()


@pytest.mark.parametrize(("topic", "expected"), [
    (f"{P}/status", ("status", "")),
    (f"{P}/health", ("health", "")),
    (f"{P}/cameras/cho/status", ("camera_status", "cho")),
    (f"{P}/cameras/cho/motion", ("camera_motion", "cho")),
    (f"{P}/events/motion", ("event", "")),
    (f"{P}/events/motion/ev-1/snapshot", ("event_snapshot", "ev-1")),
    ("matthan/v1/other/agent/status", ("other", "matthan/v1/other/agent/status")),
])
def test_view_classify_every_agent_topic(topic: str, expected: tuple[str, str]) -> None:
    """Every topic the console uses maps to its kind and id; foreign topics are `other`."""
    assert classify(P, topic) == expected


def test_view_snapshot_filename_is_safe() -> None:
    """Event ids become file names without path separators or dots that climb directories."""
    assert snapshot_filename("a/../b c") == "a_.._b_c.jpg"
    assert "/" not in snapshot_filename("../../etc/passwd")


def test_view_camera_status_counts_online_and_reports_changes_once() -> None:
    """A status change prints one line; a repeat of the same state prints none; online cameras are counted."""
    v = StationView(P)
    assert v.handle(f"{P}/cameras/cho/status", _j(state="online", reason="none", since=1.0), 0.0)
    assert v.handle(f"{P}/cameras/cho/status", _j(state="online", reason="none", since=1.0), 0.0) == []
    lines = v.handle(f"{P}/cameras/nga-ba/status", _j(state="offline", reason="rtsp_refused", message="refused"), 0.0)
    assert "offline (rtsp_refused: refused)" in lines[0]
    assert v.online_count() == 1 and v.ever_online == {"cho"} and v.max_online == 1


def test_view_event_start_carries_the_snapshot_saved_before_it() -> None:
    """The JPEG arrives before its start event (docs/mqtt.md), so the start line names the saved file."""
    v = StationView(P)
    assert v.snapshot_saved("ev-1", "/d/ev-1.jpg") == []
    lines = v.handle(f"{P}/events/motion", _j(type="start", event_id="ev-1", camera="cho", ts=5.0, start_ts=5.0,
                                               score=0.42, zones=["duong"]), 0.0)
    assert "START" in lines[0] and "/d/ev-1.jpg" in lines[0] and "zones duong" in lines[0]
    assert v.event_starts == 1


def test_view_event_late_snapshot_gets_its_own_line() -> None:
    """A snapshot that comes after its event's start is announced and attached to the event."""
    v = StationView(P)
    v.handle(f"{P}/events/motion", _j(type="start", event_id="ev-2", camera="cho", ts=5.0, score=0.1), 0.0)
    lines = v.snapshot_saved("ev-2", "/d/ev-2.jpg")
    assert lines and "/d/ev-2.jpg" in lines[0]
    assert v.events[-1].snapshot == "/d/ev-2.jpg"


def test_view_event_duplicates_and_updates_are_not_counted_twice() -> None:
    """At-least-once delivery: a repeated start is ignored; updates are not lines; an end shows its duration."""
    v = StationView(P)
    start = _j(type="start", event_id="ev-3", camera="cho", ts=5.0, start_ts=5.0, score=0.1)
    v.handle(f"{P}/events/motion", start, 0.0)
    assert v.handle(f"{P}/events/motion", start, 0.0) == []
    assert v.handle(f"{P}/events/motion", _j(type="update", event_id="ev-3", camera="cho", ts=6.0), 0.0) == []
    end = v.handle(f"{P}/events/motion", _j(type="end", event_id="ev-3", camera="cho", ts=9.0, start_ts=5.0,
                                            end_ts=9.5, score=0.3), 0.0)
    assert "END" in end[0] and "4.5 s" in end[0]
    assert (v.event_starts, v.event_ends) == (1, 1)


def test_view_health_updates_fps_and_frame_age() -> None:
    """Health carries CPU, temperature, outbox depth and per-camera fps and last-frame age."""
    v = StationView(P)
    body = _j(ts=10.0, host={"cpu_pct": 12.5, "temperature_c": 51.25}, outbox={"depth": 3},
              cameras={"cho": {"fps_in": 15.0, "last_frame_age_s": 0.2}})
    line = v.handle(f"{P}/health", body, 100.0)[0]
    assert "cpu 12%" in line or "cpu 13%" in line
    assert "51.2°C" in line and "outbox depth 3" in line
    assert v.cameras["cho"].fps == 15.0 and v.cameras["cho"].last_frame_age_s == 0.2


def test_view_motion_topic_and_agent_status() -> None:
    """Retained ON/OFF sets the camera's motion flag; the agent's online/offline is shown once per change."""
    v = StationView(P)
    v.handle(f"{P}/cameras/cho/motion", b"ON", 0.0)
    assert v.cameras["cho"].motion
    assert "agent online" in v.handle(f"{P}/status", _j(state="online", ts=1.0, version="0.1"), 0.0)[0]
    assert v.handle(f"{P}/status", _j(state="online", ts=2.0), 0.0) == []
