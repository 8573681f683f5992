"""Retained state of the running daemon against a real Mosquitto: `rebirth` brings back every retained topic,
Home Assistant's `online` brings back discovery, and a camera greyscale by day is reported `stuck_ir`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.models import CameraReport, DecodeMode
from agent.mqtt import payloads
from agent.outbox import Priority, Record
from tests.app.daemon_rig import PREFIX, clear, command, make_daemon, retained, running, wait_until
from tests.rig.broker import Broker, Collector

pytestmark = pytest.mark.broker

HA = "homeassistant/#"
NOON_VN = datetime(2025, 6, 2, 5, 0, tzinfo=UTC).timestamp()  # 12:00 in Vietnam (UTC+7)
NIGHT_VN = datetime(2025, 6, 2, 16, 0, tzinfo=UTC).timestamp()  # 23:00 in Vietnam
REPORT_EVERY_S = 0.5  # how often the test plays the camera pipeline (the real one reports every 5 s and on change)


def test_daemon_rebirth_republishes_every_retained_topic(broker: Broker, tmp_path: Path) -> None:
    """After the station clears every retained topic, `rebirth` brings all back: agent status (same session),
    camera status, the last motion ON and the Home Assistant configs."""
    d = make_daemon(broker, tmp_path, ha=True)
    motion = d.topics.camera_motion("cho")
    with running(d):
        d.outbox.put(Record(motion, payloads.camera_motion(True), Priority.EVENT, retain=True))  # as a worker does
        want = {f"{PREFIX}/status", f"{PREFIX}/cameras/cho/status", motion}
        want |= {t for t, _ in payloads.ha_agent_configs(d.topics, "agent-1", version="x")}
        want |= {t for t, _ in payloads.ha_camera_configs(d.topics, "agent-1", "cho")}
        before = wait_until(lambda: (r := retained(broker, f"{PREFIX}/#", HA)) and want <= set(r) and r,
                            15, "the daemon's retained state")
        assert before[motion] == b"ON"
        clear(broker, sorted(want))
        assert not want & set(retained(broker, f"{PREFIX}/#", HA))

        answers = Collector(broker, f"{PREFIX}/cmd_resp/#")
        station = broker.client("station-cmd")
        try:
            command(station, "rebirth", "rb-1")
            assert answers.wait_for(lambda m: len(m) >= 1, 15), "no answer to rebirth"
            answer = json.loads(answers.messages[0].payload)
        finally:
            answers.close()
            station.disconnect()
        assert answer["req_id"] == "rb-1" and answer["ok"] is True
        assert answer["result"]["republished"] == len(want)
        after = retained(broker, f"{PREFIX}/#", HA)
        assert want <= set(after), sorted(want - set(after))
        status = json.loads(after[f"{PREFIX}/status"])
        assert status["state"] == "online" and status["session"] == d.client.session
        assert after[motion] == b"ON"
        assert json.loads(after[f"{PREFIX}/cameras/cho/status"])["camera"] == "cho"


def test_daemon_ha_status_online_republishes_discovery(broker: Broker, tmp_path: Path) -> None:
    """A discovery config cleared at the broker comes back when Home Assistant announces `online`."""
    d = make_daemon(broker, tmp_path, ha=True)
    topic, body = payloads.ha_camera_configs(d.topics, "agent-1", "cho")[0]
    with running(d):
        wait_until(lambda: topic in retained(broker, HA), 15, "the discovery config")
        clear(broker, [topic])
        assert topic not in retained(broker, HA)
        watch = Collector(broker, topic)
        station = broker.client("station-ha")
        try:
            station.publish("homeassistant/status", b"online", qos=1).wait_for_publish(10)
            assert watch.wait_for(lambda m: any(x.payload for x in m), 15), "discovery was not re-published"
            assert json.loads(next(x.payload for x in watch.messages if x.payload)) == json.loads(body)
        finally:
            watch.close()
            station.disconnect()
        assert retained(broker, HA).get(topic)


def _report(camera_id: str, ts: float) -> CameraReport:
    return CameraReport(camera_id, ts, connected=True, decode_mode=DecodeMode.FULL, fps_in=10.0, fps_analysed=10.0,
                        last_frame_ts=ts, last_frame_age_s=0.1, mean_luma=110.0, luma_std=40.0, greyscale=True)


def test_daemon_reports_stuck_ir_by_day_only(broker: Broker, tmp_path: Path) -> None:
    """A camera greyscale at noon (Vietnam) is published degraded/stuck_ir; one greyscale at night goes online."""
    d = make_daemon(broker, tmp_path, cameras=("cho", "cong"))
    statuses = Collector(broker, f"{PREFIX}/cameras/+/status")
    try:
        with running(d):
            def settled(msgs: list[object]) -> bool:
                latest = {}
                for m in msgs:
                    doc = json.loads(m.payload)  # type: ignore[attr-defined]
                    latest[doc["camera"]] = (doc["state"], doc["reason"])
                return latest.get("cho") == ("degraded", "stuck_ir") and latest.get("cong") == ("online", "none")

            for _ in range(int(20 / REPORT_EVERY_S)):
                d._on_report(_report("cho", NOON_VN))
                d._on_report(_report("cong", NIGHT_VN))
                if statuses.wait_for(settled, REPORT_EVERY_S):
                    break
            assert statuses.wait_for(settled, 0), [m.payload for m in statuses.messages]
    finally:
        statuses.close()
