"""The camera pipeline: events with snapshots from files, adaptive decoding, and robustness of the sinks."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.camera import CameraPipeline, PipelineSettings
from agent.models import CameraReport, DecodeMode, EventKind, MotionEvent
from agent.motion import TrackerSettings
from agent.storage import SnapshotStore
from agent.video import SourceSettings
from tests.camera.reports import Collector


def _run_file(clip: Path, mode: DecodeMode, tmp_path: Path, on_event=None):
    events: Collector[MotionEvent] = Collector()
    reports: Collector[CameraReport] = Collector()
    settings = PipelineSettings("cam-cho", str(clip), source=SourceSettings(decode_mode=mode),
                                tracker=TrackerSettings(min_motion_s=0.5, event_gap_s=3.0))
    pipeline = CameraPipeline(settings, on_event=on_event or events, on_report=reports,
                              snapshots=SnapshotStore(tmp_path / "snaps"))
    pipeline.run(threading.Event())
    return events.values(), reports.values()


@pytest.mark.parametrize("mode", [DecodeMode.FULL, DecodeMode.ADAPTIVE])
def test_pipeline_file_one_event_per_crossing_with_snapshot(crossing_clip: Path, tmp_path: Path,
                                                            mode: DecodeMode) -> None:
    """Two crossings in a clip give two events (start and end each), with a JPEG of the peak frame on disk."""
    events, reports = _run_file(crossing_clip, mode, tmp_path)
    starts = [e for e in events if e.kind == EventKind.START]
    ends = [e for e in events if e.kind == EventKind.END]
    assert len(starts) == 2 and len(ends) == 2
    assert [e.event_id for e in starts] == [e.event_id for e in ends]
    first_start = 3.0 if mode == DecodeMode.FULL else 4.0  # adaptive sees the first keyframe after 3 s
    assert first_start - 0.5 <= starts[0].start_ts <= first_start + 1.0
    assert 11.5 <= starts[1].start_ts <= 15.0
    for end in ends:
        assert end.snapshot_path and end.camera_id == "cam-cho"
        img = cv2.imread(end.snapshot_path)
        assert img is not None and img.shape[1] == 640
        assert end.peak_box is not None and 0.3 < end.peak_box.y + end.peak_box.h / 2 < 0.55
    final = reports[-1]
    assert final.events == 2 and final.frames_in == 300 and not final.connected


def test_pipeline_adaptive_analyses_fewer_frames(crossing_clip: Path, tmp_path: Path) -> None:
    """Adaptive mode analyses far fewer frames than full mode on a mostly quiet clip, yet finds the events."""
    _, full = _run_file(crossing_clip, DecodeMode.FULL, tmp_path / "a")
    _, adaptive = _run_file(crossing_clip, DecodeMode.ADAPTIVE, tmp_path / "b")
    assert adaptive[-1].frames_analysed < 0.8 * full[-1].frames_analysed
    assert adaptive[-1].events == full[-1].events == 2


def test_pipeline_keyframe_mode_analyses_keyframes_only(crossing_clip: Path, tmp_path: Path) -> None:
    """Keyframe mode analyses one frame per GOP (10 in a 20 s clip with a 2 s GOP)."""
    _, reports = _run_file(crossing_clip, DecodeMode.KEYFRAME, tmp_path)
    assert reports[-1].frames_analysed == 10 and reports[-1].frames_in == 300


def test_pipeline_sink_failure_does_not_stop_camera(crossing_clip: Path, tmp_path: Path) -> None:
    """An event sink that raises is logged and the pipeline carries on to the end of the clip."""
    calls: list[MotionEvent] = []

    def broken(event: MotionEvent) -> None:
        calls.append(event)
        raise RuntimeError("outbox full")

    _, reports = _run_file(crossing_clip, DecodeMode.FULL, tmp_path, on_event=broken)
    assert len(calls) >= 4 and reports[-1].frames_in == 300


def test_pipeline_missing_file_reports_error_and_stops_on_request(tmp_path: Path) -> None:
    """A missing source is reported as a typed error with a plain message; stop ends the retry loop at once."""
    reports: Collector[CameraReport] = Collector()
    stop = threading.Event()
    pipeline = CameraPipeline(PipelineSettings("cam", str(tmp_path / "gone.mp4")), on_event=lambda e: None,
                              on_report=reports)
    thread = threading.Thread(target=pipeline.run, args=(stop,))
    thread.start()
    report = reports.wait_for(lambda r: r.error is not None, timeout=10)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert report is not None and "no such file" in report.error_message and not report.connected


def test_pipeline_report_luma_statistics(crossing_clip: Path, tmp_path: Path) -> None:
    """Reports carry the picture's mean and spread and say the synthetic grey clip is greyscale."""
    _, reports = _run_file(crossing_clip, DecodeMode.FULL, tmp_path)
    final = reports[-1]
    assert final.mean_luma is not None and 80 < final.mean_luma < 160
    assert final.luma_std is not None and final.luma_std > 10
    assert final.greyscale is True
    assert np.isfinite(final.last_frame_ts or np.nan)


def test_pipeline_motion_hint_wakes_full_decoding(crossing_clip: Path, tmp_path: Path) -> None:
    """An external motion hint (the seam for camera-side ONVIF events) switches adaptive mode to full decoding."""
    reports: Collector[CameraReport] = Collector()
    settings = PipelineSettings("cam", str(crossing_clip), source=SourceSettings(decode_mode=DecodeMode.ADAPTIVE),
                                hint_hold_s=600.0)
    pipeline = CameraPipeline(settings, on_event=lambda e: None, on_report=reports)
    pipeline.hint()  # before the stream opens: the whole (fast) replay stays in full mode
    pipeline.run(threading.Event())
    _, full = _run_file(crossing_clip, DecodeMode.FULL, tmp_path)
    assert reports.values()[-1].frames_analysed == full[-1].frames_analysed


class _FakeSource:
    """A live source that shows a quiet scene, then a moving square, then fails as a stalled camera."""

    live = True

    def __init__(self) -> None:
        self.packets_in = self.frames_decoded = 0
        self.decode_s = 0.0

    def set_keyframes_only(self, on: bool) -> None:
        pass

    def describe(self) -> str:
        return "fake"

    def frames(self, stop=None):
        from agent.video import Frame, Stalled

        base = np.full((360, 640), 110, np.uint8)
        base[:120] = 170
        for i in range(40):
            y = base.copy()
            if i >= 20:
                x = (i - 20) * 25
                y[150:200, x : x + 48] = 20
            y = (y + (np.arange(640) % 3)[None, :]).astype(np.uint8)  # a fixed texture, as a real scene has
            self.packets_in += 1
            self.frames_decoded += 1
            yield Frame(y=y, ts=1_700_000_000.0 + i * 0.2, index=i, keyframe=(i % 10 == 0))
        raise Stalled("fake: the camera stopped sending")


def test_pipeline_outage_ends_running_event_and_reports_stall() -> None:
    """A camera failing mid-event ends that event (at its last motion) and reports stream_stalled."""
    events: Collector[MotionEvent] = Collector()
    stop = threading.Event()

    def on_report(report: CameraReport) -> None:
        if report.error is not None:
            stop.set()

    settings = PipelineSettings("cam", "fake://", source=SourceSettings(decode_mode=DecodeMode.FULL),
                                tracker=TrackerSettings(min_motion_s=0.4, event_gap_s=5.0))
    pipeline = CameraPipeline(settings, on_event=events, on_report=on_report, source_factory=_FakeSource)
    pipeline.run(stop)
    kinds = [e.kind for e in events.values()]
    assert kinds == [EventKind.START, EventKind.END]
    end = events.values()[-1]
    assert end.end_ts == pytest.approx(1_700_000_000.0 + 39 * 0.2)
    final = pipeline.report()
    assert final.error == "stream_stalled" and final.stalls == 1 and final.events == 1
