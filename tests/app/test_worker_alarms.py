"""The camera worker with camera-side alarms: an `onvif_events` camera's own motion alarm becomes motion events in
the outbox, through the real worker entry, against a simulated camera's ONVIF PullPoint service."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.app.jobs import CameraJob
from agent.camera.onvif_events import OnvifEventsSettings
from agent.camera.settings import PipelineSettings
from agent.models import CameraReport
from agent.motion.settings import TrackerSettings
from agent.outbox import Outbox
from tests.rig.sim import running_cluster

pytestmark = [pytest.mark.rtsp]

SCENARIO = {
    "scenes": {"street": {"loop_s": 12, "actors": [{"name": "walker", "kind": "person", "start_s": 2,
                                                      "duration_s": 5}]}},
    "cameras": [{"name": "cong-chua"}],
}


class Beats:
    """The supervisor side of the heartbeat: counts beats per camera."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}

    def beat(self, camera_id: str | None = None, frames: int = 1) -> None:
        self.count[camera_id or ""] = self.count.get(camera_id or "", 0) + frames


class Reports:
    def __init__(self) -> None:
        self.items: list[CameraReport] = []

    def put(self, report: CameraReport) -> bool:
        self.items.append(report)
        return True


@pytest.fixture(scope="module")
def camera() -> Iterator[Any]:
    with running_cluster(SCENARIO) as cluster:
        yield cluster.info("cong-chua")


def _job(tmp_path: Path, info: Any) -> CameraJob:
    return CameraJob(
        camera_id="cong-chua",
        pipeline=PipelineSettings(camera_id="cong-chua", uri=info.rtsp_uri("sub", with_credentials=True)),
        agent_id="pi-test", topic_prefix="matthan/v1/xa/pi-test", outbox_path=str(tmp_path / "outbox.sqlite3"),
        outbox_max_bytes=8 * 1024 * 1024, outbox_max_rows=10_000, snapshot_dir=str(tmp_path / "snapshots"),
        snapshot_quota_bytes=8 * 1024 * 1024,
        onvif_events=OnvifEventsSettings(camera_id="cong-chua", host=info.ip, port=info.onvif_port,
                                         username=info.username, password=info.password, emit_events=True,
                                         tracker=TrackerSettings(min_motion_s=0.5, event_gap_s=2.0)),
    )


def test_worker_onvif_events_camera_alarm_becomes_motion_events(tmp_path: Path, camera: Any) -> None:
    """With event_source onvif_events the worker decodes no video, subscribes to the camera's alarm, commits a
    motion start and end to the outbox for a crossing, reports the subscription, and beats for the camera."""
    from agent.app.worker import run_cameras

    job = _job(tmp_path, camera)
    assert not job.runs_video
    station = Outbox(job.outbox_path, agent_id=job.agent_id)  # the supervisor's (owner) instance
    beats, reports, stop = Beats(), Reports(), threading.Event()
    worker = threading.Thread(target=run_cameras, args=([job], reports, beats, stop), daemon=True)
    worker.start()
    try:
        deadline = time.monotonic() + 40  # a crossing every 12 s; two loops at most
        kinds: list[str] = []
        while time.monotonic() < deadline and not {"start", "end"} <= set(kinds):
            rows = station.claim(100)
            kinds = [json.loads(r.payload)["type"] for r in rows if r.topic.endswith("/events/motion")]
            time.sleep(0.5)  # polling the outbox file the worker writes, bounded by the deadline
        assert {"start", "end"} <= set(kinds), kinds
    finally:
        stop.set()
        worker.join(15)
        station.close()
    assert not worker.is_alive()
    assert any(r.connected for r in reports.items), "the subscription was never reported"
    assert beats.count.get("cong-chua", 0) >= 1
    assert not (tmp_path / "snapshots").exists() or not any((tmp_path / "snapshots").iterdir())


def test_worker_jobs_event_source_maps_to_alarm_settings(tmp_path: Path) -> None:
    """event_source video runs no alarm; onvif_events emits alarm events; both only wakes the video decoder."""
    from agent.app.cameras import discovered_camera, jobs_for
    from agent.config import validate_data
    from agent.models import CameraInfo

    info = CameraInfo(camera_id="cho", ip="198.18.0.11", xaddr="http://198.18.0.11/onvif/device_service",
                      stream_uri="rtsp://198.18.0.11:554/Streaming/Channels/102")
    for source, expected in (("video", None), ("onvif_events", True), ("both", False)):
        cfg = validate_data({"site_id": "xa", "mqtt": {"host": "127.0.0.1"},
                             "storage": {"state_dir": str(tmp_path)},
                             "discovery": {"credentials": [{"username": "admin", "password": "pw-1234"}]},
                             "cameras": [{"name": "cho", "event_source": source}]},
                            file="test.yaml", base_dir=tmp_path)
        cam = discovered_camera(cfg, info, credential_user="admin", ok=True)
        (job,) = jobs_for(cfg, [cam], state_dir=tmp_path)
        alarm = job.onvif_events
        assert (alarm.emit_events if alarm else None) == expected, source
        if alarm is not None:
            assert (alarm.host, alarm.port, alarm.username, alarm.password) == ("198.18.0.11", 80, "admin", "pw-1234")
