"""Helpers for running the real camera worker (agent.app.worker) in the supervisor tests: jobs, a camera that
never answers, and a report recorder that notes the heartbeat at each report."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.app.jobs import CameraJob
from agent.camera.settings import PipelineSettings
from agent.models import CameraReport
from agent.outbox import Outbox
from agent.supervisor import Heartbeat
from agent.video import SourceSettings

WORKER_ENTRY = "agent.app.worker:run_cameras"
QUOTA_BYTES = 8 * 1024 * 1024  # outbox and snapshot caps: plenty for a test, small enough for any tmp dir
REPORT_S = 0.5  # s between a camera's periodic reports: quick tests, still far above a report's cost


def camera_job(camera_id: str, uri: str, state_dir: Path, *, snapshot_quota_bytes: int = QUOTA_BYTES,
               **source: Any) -> CameraJob:
    """A real camera job, as agent.app.cameras builds it, writing under `state_dir`."""
    outbox_path = state_dir / "outbox.sqlite3"
    if not outbox_path.exists():  # the supervisor's (owner) instance creates the store before workers start
        Outbox(outbox_path, agent_id="pi-test").close()
    return CameraJob(
        camera_id=camera_id,
        pipeline=PipelineSettings(camera_id=camera_id, uri=uri, source=SourceSettings(**source),
                                  report_interval_s=REPORT_S),
        agent_id="pi-test", topic_prefix="matthan/v1/xa/pi-test", outbox_path=str(outbox_path),
        outbox_max_bytes=QUOTA_BYTES, outbox_max_rows=10_000, snapshot_dir=str(state_dir / "snapshots"),
        snapshot_quota_bytes=snapshot_quota_bytes,
    )


def free_port() -> int:
    """A loopback TCP port nobody listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SilentCamera:
    """A loopback TCP listener that accepts connections and never answers: a camera whose RTSP service hangs."""

    def __init__(self, port: int) -> None:
        self._listener = socket.create_server(("127.0.0.1", port))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self.accepted = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-camera", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self._held.append(conn)  # held open, never read or written
            self.accepted.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._listener.close()
        for conn in self._held:
            with contextlib.suppress(OSError):
                conn.close()


class BeatRecorder:
    """The worker's report sink, in-process: keeps each report with the camera's heartbeat count when it came."""

    def __init__(self, heartbeat: Heartbeat) -> None:
        self._heartbeat = heartbeat
        self._cond = threading.Condition()
        self.items: list[tuple[CameraReport, int]] = []

    def put(self, report: CameraReport) -> bool:
        beats = self._heartbeat.read()[self._heartbeat.camera_ids.index(report.camera_id)]
        with self._cond:
            self.items.append((report, beats))
            self._cond.notify_all()
        return True

    def wait_for(self, pred: Callable[[CameraReport], bool], timeout_s: float) -> bool:
        """Block until a report satisfying `pred` arrives, or `timeout_s` passes; True if it arrived."""
        with self._cond:
            return self._cond.wait_for(lambda: any(pred(r) for r, _ in self.items), timeout_s)
