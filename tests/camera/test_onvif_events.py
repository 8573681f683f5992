"""Camera-side motion events: the alarm-to-result mapping, and a PullPoint loop against the simulator."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from agent.models import CameraReport, EventKind, MotionEvent, StatusReason
from agent.motion import TrackerSettings
from tests.camera.reports import Collector
from tests.rig.sim import running_cluster


def _msg(topic: str, value: str, name: str = "IsMotion") -> Any:
    item = SimpleNamespace(Name=name, Value=value)
    message = SimpleNamespace(Data=SimpleNamespace(SimpleItem=[item]))
    return SimpleNamespace(Topic=SimpleNamespace(_value_1=topic), Message=SimpleNamespace(_value_1=message))


def test_onvif_motion_flags_reads_motion_topics_only() -> None:
    """IsMotion values are read in order from motion topics; other topics are ignored."""
    from agent.camera.onvif_events import motion_flags

    msgs = [_msg("tns1:RuleEngine/CellMotionDetector/Motion", "true"),
            _msg("tns1:Device/Trigger/DigitalInput", "true", name="LogicalState"),
            _msg("tns1:RuleEngine/CellMotionDetector/Motion", "false")]
    assert motion_flags(msgs) == [True, False]
    assert motion_flags(None) == []


def test_onvif_alarm_pulse_between_pulls_counts() -> None:
    """An alarm that starts and ends between two pulls still makes that pull's result motion."""
    from agent.camera.onvif_events import AlarmState

    alarm = AlarmState()
    assert not alarm.update([], 1.0).motion
    assert alarm.update([True, False], 2.0).motion
    assert not alarm.update([], 3.0).motion
    assert alarm.update([True], 4.0).motion
    assert alarm.update([], 5.0).motion  # still on until the camera says otherwise



BLINK = {"scenes": {"blink": {"loop_s": 6, "actors": [{"name": "p", "start_s": 1.0, "duration_s": 2.0}]}},
         "cameras": [{"name": "blink", "scene": "blink"}, {"name": "mute", "scene": "blink",
                                                            "quirks": ["no_pullpoint"]}]}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with running_cluster(BLINK) as c:
        yield c


def _run(cluster: Any, name: str, seconds: float, **callbacks: Any) -> Any:
    from agent.camera.onvif_events import OnvifEventsSettings, OnvifMotionEvents

    info = cluster.info(name)
    settings = OnvifEventsSettings(name, info.ip, info.onvif_port, info.username, info.password,
                                   tracker=TrackerSettings(min_motion_s=0.5, event_gap_s=1.5))
    runner = OnvifMotionEvents(settings, **callbacks)

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        await asyncio.sleep(seconds)  # the observation window: the scene plays in real time
        stop.set()
        await asyncio.wait_for(task, 30)

    thread = threading.Thread(target=asyncio.run, args=(go(),))
    thread.start()
    thread.join(seconds + 60)
    return runner


@pytest.mark.rtsp
def test_onvif_events_follow_camera_alarm(cluster: Any) -> None:
    """The camera's alarm makes start/end events (one per 6 s loop) and wakes decoding through the hint."""
    events: Collector[MotionEvent] = Collector()
    hints = threading.Event()
    runner = _run(cluster, "blink", 14.0, on_event=events, on_hint=hints.set)
    starts = [e for e in events.values() if e.kind == EventKind.START]
    ends = [e for e in events.values() if e.kind == EventKind.END]
    assert 2 <= len(starts) <= 3 and len(ends) == len(starts)
    assert all(e.camera_id == "blink" for e in starts)
    assert hints.is_set() and runner.pulls > 3 and runner.error is None


@pytest.mark.rtsp
def test_onvif_events_refused_subscription_reported(cluster: Any) -> None:
    """A camera that refuses PullPoint is reported as onvif_error, retried, and never crashes the loop."""
    reports: Collector[CameraReport] = Collector()
    runner = _run(cluster, "mute", 4.0, on_event=lambda e: None, on_report=reports)
    bad = [r for r in reports.values() if r.error == StatusReason.ONVIF_ERROR]
    assert bad and not bad[0].connected and "retrying" in bad[0].error_message
    assert runner.resubscriptions >= 1
