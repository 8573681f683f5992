"""The real camera worker under supervision: heartbeats follow decoded frames, a camera stuck inside FFmpeg's open
gets its worker killed as hung, and a job with impossible values stops the worker for good (exit 78)."""

from __future__ import annotations

import ctypes
import multiprocessing
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.models import DecodeMode, StatusReason
from agent.supervisor import EX_CONFIG, EventKind, Heartbeat, WorkerState
from tests.supervisor.cameras import WORKER_ENTRY, BeatRecorder, SilentCamera, camera_job, free_port
from tests.supervisor.conftest import DEADLINE_S
from tests.video.clips import render
from tests.video.conftest import RtspServer, _rtsp_available

NEVER_S = 600.0  # s; open and read timeouts no test outlives, so only the supervisor can end a stuck open
MATCH_FRAMES = 2  # beats may lead or trail the report's packet count by the frame being handed over right then


@pytest.fixture(scope="module")
def quiet_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 s of a quiet street at 15 fps (the RTSP server ends the stream at the end of the file)."""
    return render(tmp_path_factory.mktemp("clips") / "quiet.mp4", 60.0)


@pytest.fixture
def rtsp_server(quiet_clip: Path) -> Iterator[RtspServer]:
    reason = _rtsp_available()
    if reason:
        pytest.skip(reason)
    server = RtspServer(quiet_clip)
    yield server
    server.stop()


@pytest.mark.rtsp
def test_worker_beats_once_per_decoded_frame(rtsp_server: RtspServer, tmp_path: Path) -> None:
    """run_cameras against a loopback RTSP camera: at every report the camera's beat count equals its frames."""
    from agent.app.worker import run_cameras

    job = camera_job("cam", rtsp_server.url(), tmp_path, decode_mode=DecodeMode.FULL)
    heartbeat = Heartbeat(multiprocessing.RawArray(ctypes.c_uint64, 1), ["cam"])
    reports, stop = BeatRecorder(heartbeat), threading.Event()
    worker = threading.Thread(target=run_cameras, args=([job], reports, heartbeat, stop), daemon=True)
    worker.start()
    try:
        assert reports.wait_for(lambda r: r.connected and r.frames_in >= 60, DEADLINE_S), reports.items[-3:]
    finally:
        stop.set()
        worker.join(15)
    assert not worker.is_alive()
    live = [(r, beats) for r, beats in reports.items if r.connected]
    assert all(r.reconnects == 0 for r, _ in live), "a reconnect would add backoff beats"
    assert all(abs(beats - r.frames_in) <= MATCH_FRAMES for r, beats in live), [
        (r.frames_in, beats) for r, beats in live]
    assert live[-1][1] >= 60, "15 beats a second while frames flow, not one per monitor turn"


def test_worker_stuck_in_open_is_killed_as_hung(make_pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A camera refusing connections beats from its backoff waits; once it accepts but never answers, the
    camera thread sits inside FFmpeg's open, stops beating, and its worker is judged hung and killed."""
    port = free_port()
    job = camera_job("cam", f"rtsp://127.0.0.1:{port}/cam", tmp_path, open_timeout_s=NEVER_S,
                     read_timeout_s=NEVER_S)
    h = make_pool([job], worker_entry=WORKER_ENTRY, workers=1, hang_timeout_s=4.0)
    h.drive(lambda: h.supervisor.snapshot().cameras["cam"] is WorkerState.RUNNING
            and any(r.error is StatusReason.RTSP_REFUSED for r in h.reports),
            what="the refused camera beating while it waits to reconnect")
    assert not any(r.connected for r in h.reports)
    camera = SilentCamera(port)
    try:
        h.drive(lambda: bool(h.events_of(EventKind.HUNG)), what="the worker judged hung")
        assert camera.accepted.is_set(), "the camera thread must have been inside FFmpeg's open"
        (hung,) = h.events_of(EventKind.HUNG)
        assert hung.camera_ids == ("cam",) and "no progress from cam" in hung.message
        h.drive(lambda: bool(h.events_of(EventKind.EXITED)), what="the hung worker ending")
        assert h.events_of(EventKind.EXITED)[0].pid == hung.pid
    finally:
        camera.close()


@pytest.mark.parametrize(("uri", "quota"), [("frames/in%s.jpg", 8 << 20), (None, 0)], ids=["bad-uri", "bad-quota"])
def test_worker_bad_job_is_config_error_not_respawned(make_pool, tmp_path: Path, uri: str | None,  # type: ignore[no-untyped-def]
                                                      quota: int) -> None:
    """A real camera job with an impossible value (a sequence pattern without a counter, a zero snapshot quota)
    ends its worker with exit 78; it is never respawned while the healthy worker keeps reporting."""
    refused = f"rtsp://127.0.0.1:{free_port()}/cam"
    ok = camera_job("ok", refused, tmp_path / "ok")
    bad = camera_job("bad", uri or refused, tmp_path / "bad", snapshot_quota_bytes=quota)
    h = make_pool([ok, bad], worker_entry=WORKER_ENTRY, workers=2, hang_timeout_s=10.0)
    h.drive(lambda: bool(h.events_of(EventKind.CONFIG_ERROR)), what="the configuration error")
    (config,) = h.events_of(EventKind.CONFIG_ERROR)
    assert config.camera_ids == ("bad",) and config.exitcode == EX_CONFIG
    seen = len(h.reports)
    h.drive(lambda: sum(r.camera_id == "ok" for r in h.reports[seen:]) >= 6,
            what="three more seconds of reports from the healthy camera")
    snap = h.supervisor.snapshot()
    assert snap.cameras == {"ok": WorkerState.RUNNING, "bad": WorkerState.CONFIG_ERROR}
    assert len(h.events_of(EventKind.STARTED, slot=config.slot)) == 1, "a configuration error is not respawned"
    assert not h.events_of(EventKind.EXITED, slot=config.slot)
