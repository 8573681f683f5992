"""Camera-side motion events over ONVIF PullPoint, driven by the scene's ground truth, read with onvif-zeep-async."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from collections.abc import Callable

import pytest
from onvif import ONVIFCamera

from agent.simulator.cluster import Cluster
from agent.simulator.scenario import parse_scenario

pytestmark = pytest.mark.rtsp

SHORT_SCENE = {"scenes": {"blink": {"loop_s": 4, "actors": [{"name": "p", "start_s": 1.0, "duration_s": 1.5}]}},
               "defaults": {"scene": "blink"}}


def _is_motion(msg: object) -> tuple[str, str, bool]:
    message = msg.Message._value_1  # type: ignore[attr-defined]  # zeep parses tt:Message with onvif.xsd
    value = next(i.Value for i in message.Data.SimpleItem if i.Name == "IsMotion")
    return msg.Topic._value_1, message.PropertyOperation, value == "true"  # type: ignore[attr-defined]


def crossed(changes: list[bool]) -> bool:
    """A whole crossing: motion started, then ended (the subscription may begin mid-crossing)."""
    return True in changes and False in changes[changes.index(True):]


def test_events_pullpoint_reports_motion_start_and_end(make_cluster: Callable[..., Cluster]) -> None:
    """A PullPoint subscription gets Initialized, then IsMotion true and false as the actor crosses; Renew works."""
    cluster = make_cluster(parse_scenario(SHORT_SCENE, cameras=1))
    info = cluster.info("cam01")

    async def go() -> tuple[list[tuple[str, str, bool]], object, object]:
        cam = ONVIFCamera(info.ip, info.onvif_port, info.username, info.password, adjust_time=True)
        try:
            await cam.update_xaddrs()
            props = await (await cam.create_events_service()).GetEventProperties()
            manager = await cam.create_pullpoint_manager(dt.timedelta(seconds=60), lambda: None)
            pullpoint = manager.get_service()
            seen: list[tuple[str, str, bool]] = []
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not crossed([s[2] for s in seen if s[1] == "Changed"]):
                reply = await pullpoint.PullMessages({"MessageLimit": 10, "Timeout": dt.timedelta(seconds=2)})
                seen.extend(_is_motion(m) for m in reply.NotificationMessage)
            renewed = await manager._subscription.Renew(dt.timedelta(seconds=30))  # the manager's own renew path
            await manager.shutdown()
            return seen, props, renewed
        finally:
            await cam.close()

    seen, props, renewed = asyncio.run(go())
    assert seen[0][:2] == ("tns1:RuleEngine/CellMotionDetector/Motion", "Initialized")
    changes = [s[2] for s in seen if s[1] == "Changed"]
    assert crossed(changes), changes
    assert all(a != b for a, b in itertools.pairwise(changes))  # only real changes are reported
    assert props.FixedTopicSet is True
    assert renewed.TerminationTime > renewed.CurrentTime


def test_events_motion_follows_ground_truth_timing(make_cluster: Callable[..., Cluster]) -> None:
    """IsMotion turns true within 0.5 s of the ground truth's actor entering, measured on the wall clock."""
    cluster = make_cluster(parse_scenario(SHORT_SCENE, cameras=1))
    info = cluster.info("cam01")
    actor = info.ground_truth["actors"][0]
    loop_s = info.ground_truth["loop_s"]

    async def go() -> float:
        cam = ONVIFCamera(info.ip, info.onvif_port, info.username, info.password, adjust_time=True)
        await cam.update_xaddrs()
        manager = await cam.create_pullpoint_manager(dt.timedelta(seconds=60), lambda: None)
        pullpoint = manager.get_service()
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                reply = await pullpoint.PullMessages({"MessageLimit": 10, "Timeout": dt.timedelta(seconds=2)})
                for m in reply.NotificationMessage:
                    _topic, op, moving = _is_motion(m)
                    if op == "Changed" and moving:
                        return time.time()
            raise AssertionError("no motion event within 15 s")
        finally:
            await manager.shutdown()
            await cam.close()

    seen_at = asyncio.run(go())
    loop_t = (seen_at - info.anchor) % loop_s
    assert 0.0 <= loop_t - actor["visible"][0] < 0.5
