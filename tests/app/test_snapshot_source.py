"""`stream: snapshot` end to end: configuration -> camera job -> pipeline polling a loopback HTTP camera (Digest)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.app.cameras import configured_cameras, jobs_for
from agent.camera import CameraPipeline
from agent.config import validate_data
from agent.models import CameraReport, EventKind, MotionEvent
from agent.simulator.httpauth import DigestChecker
from agent.storage import SnapshotStore
from tests.camera.reports import Collector

USER, PASSWORD = "admin", "cau-tre-123"
QUIET_FRAMES = 8  # > the detector's 1 s warm-up at 0.2 s per picture
MOVING_FRAMES = 8  # 1.6 s of motion: past min_motion_s, so an event starts
PATH = "/cgi-bin/fetch"  # nothing like .jpg or "snapshot": only the config key can make this a snapshot camera


def picture(index: int) -> bytes:
    """A textured street; for MOVING_FRAMES pictures after the quiet ones, a bright block crosses it."""
    ramp = np.tile(np.linspace(40, 160, 320, dtype=np.uint8), (180, 1))
    img = cv2.merge([ramp, ramp, ramp])
    step = index - QUIET_FRAMES
    if 0 <= step < MOVING_FRAMES:
        x = 20 + step * 30
        cv2.rectangle(img, (x, 70), (x + 40, 120), (250, 250, 250), -1)
    return cv2.imencode(".jpg", img)[1].tobytes()


@dataclass
class DigestCamera:
    """What the loopback camera saw: challenges sent and pictures served with valid Digest credentials."""

    port: int = 0
    challenges: int = 0
    served: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def digest_camera() -> Iterator[DigestCamera]:
    """A camera web server on 127.0.0.1 answering PATH with a JPEG, behind the simulator's Digest check."""
    state, checker = DigestCamera(), DigestChecker()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with state.lock:
                if self.path != PATH or not checker.check(self.headers.get("Authorization"), "GET", USER, PASSWORD):
                    state.challenges += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", checker.challenge())
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = picture(state.served)
                state.served += 1
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def test_snapshot_camera_runs_pipeline_to_an_event(digest_camera: DigestCamera, tmp_path: Path) -> None:
    """A camera with `stream: snapshot` is polled over Digest auth and its pictures make a motion event."""
    cfg = validate_data({
        "site_id": "xa-tan-phu", "agent_id": "pi-test", "mqtt": {"host": "127.0.0.1"},
        "motion": {"min_motion_s": 0.5, "event_gap_s": 1.0},
        "cameras": [{"name": "cau-tre", "url": f"http://127.0.0.1:{digest_camera.port}{PATH}", "stream": "snapshot",
                     "snapshot_interval_s": 0.2, "credentials": {"username": USER, "password": PASSWORD}}],
    })
    (job,) = jobs_for(cfg, configured_cameras(cfg), state_dir=tmp_path)
    assert job.pipeline.snapshot and job.pipeline.source.snapshot_interval_s == 0.2

    events: Collector[MotionEvent] = Collector()
    reports: Collector[CameraReport] = Collector()
    pipeline = CameraPipeline(job.pipeline, on_event=events, on_report=reports,
                              snapshots=SnapshotStore(tmp_path / "snaps"))
    stop = threading.Event()
    runner = threading.Thread(target=pipeline.run, args=(stop,), name="pipeline-cau-tre")
    runner.start()
    try:
        end = events.wait_for(lambda e: e.kind == EventKind.END, timeout=30)
    finally:
        stop.set()
        runner.join(timeout=15)
    assert not runner.is_alive()
    assert end is not None, f"no event end; events: {events.values()}"
    start = next(e for e in events.values() if e.kind == EventKind.START)
    assert start.event_id == end.event_id and end.camera_id == "cau-tre"
    assert end.snapshot_path and cv2.imread(end.snapshot_path) is not None
    assert end.peak_box is not None and 0.3 < end.peak_box.y + end.peak_box.h / 2 < 0.7
    connected = reports.wait_for(lambda r: r.connected and r.error is None, timeout=0)
    assert connected is not None, "the pipeline never reported the camera connected"
    final = reports.values()[-1]
    assert final.events == 1
    assert final.frames_analysed == final.frames_in >= QUIET_FRAMES + MOVING_FRAMES
    with digest_camera.lock:
        assert digest_camera.served >= final.frames_in and digest_camera.challenges >= 1


def test_snapshot_wrong_password_is_one_login_per_poll(digest_camera: DigestCamera) -> None:
    """A rejected Digest answer ends the poll at once: one login per poll, not urllib's six (account lockout)."""
    from agent.video import AuthFailed
    from agent.video.snapshot_http import HttpSnapshotSource

    source = HttpSnapshotSource(f"http://{USER}:wrong@127.0.0.1:{digest_camera.port}{PATH}", interval_s=0.2)
    with pytest.raises(AuthFailed):
        next(iter(source.frames(threading.Event())))
    with digest_camera.lock:
        assert digest_camera.challenges == 2  # the unauthenticated request, then our single rejected answer
        assert digest_camera.served == 0
