"""What a camera worker process runs: one pipeline thread per camera, events into the outbox, reports up.

Durability order for a motion event (docs/architecture.md): the pipeline writes the snapshot JPEG, then this
module commits the event (and the snapshot bytes) to the outbox with `synchronous=FULL`, and only then is anything
published. The worker opens the outbox as a non-owner: SQLite's WAL lets several processes insert, and only the
supervisor's instance claims and acknowledges rows.

Liveness: the supervisor's heartbeat must advance on frames processed, not on loop turns. A source wrapper beats
once per frame the decoder delivers; while a camera is disconnected (waiting out its reconnect backoff) the monitor
beats once a second, because waiting for a dead camera is progress too. A decoder stuck inside FFmpeg delivers no
frame while connected, so its worker stops beating and is killed.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from agent.app.jobs import CameraJob
from agent.camera import CameraPipeline
from agent.logsetup import camera_logger
from agent.models import CameraReport, EventKind, MotionEvent
from agent.mqtt import Topics, payloads, records
from agent.outbox import Outbox, Priority, Record
from agent.storage.snapshots import SnapshotStore
from agent.video import FrameSource, open_source

log = logging.getLogger(__name__)

MONITOR_S = 1.0  # heartbeat period for disconnected cameras; far below the supervisor's 30 s hang timeout


class _BeatingSource:
    """A frame source that bumps the camera's heartbeat for every frame it yields."""

    def __init__(self, inner: FrameSource, beat: Any) -> None:
        self._inner = inner
        self._beat = beat

    def frames(self, stop: threading.Event) -> Iterator[Any]:
        for frame in self._inner.frames(stop):
            self._beat()
            yield frame

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _EventSink:
    """Turns a camera's motion events into outbox records; one per camera (it remembers what it sent)."""

    def __init__(self, camera_id: str, outbox: Outbox, topics: Topics) -> None:
        self._camera_id = camera_id
        self._outbox = outbox
        self._topics = topics
        self._log = camera_logger(log, camera_id)
        self._sent_snapshot: dict[str, tuple[int, int]] = {}  # event id -> (mtime_ns, size) of the JPEG sent

    def __call__(self, event: MotionEvent) -> None:
        jpeg = self._snapshot_if_new(event)
        batch = records.motion_event(self._topics, event, jpeg)
        if event.kind is not EventKind.UPDATE:
            on = event.kind is EventKind.START
            batch.append(Record(self._topics.camera_motion(self._camera_id), payloads.camera_motion(on),
                                Priority.EVENT, retain=True))
        ids = self._outbox.put_many(batch)  # durable when it returns
        if event.kind is EventKind.END:
            self._sent_snapshot.pop(event.event_id, None)
        self._log.info("motion %s %s (score %.3f) queued as %s", event.kind.value, event.event_id,
                       event.peak_score, ids[-1])

    def _snapshot_if_new(self, event: MotionEvent) -> bytes | None:
        """The JPEG bytes if the event's snapshot file is new or has changed since we last queued it."""
        if not event.snapshot_path or event.kind is EventKind.UPDATE:
            return None  # a picture at the start and (if the peak moved) at the end; updates stay small
        try:
            with open(event.snapshot_path, "rb") as fh:
                stat = os.fstat(fh.fileno())
                data = fh.read()
        except OSError:
            return None  # evicted by the quota already, or never written: the event goes without a picture
        key = (stat.st_mtime_ns, stat.st_size)
        if self._sent_snapshot.get(event.event_id) == key:
            return None
        self._sent_snapshot[event.event_id] = key
        return data


def run_cameras(jobs: Sequence[CameraJob], reports: Any, heartbeat: Any, stop: threading.Event) -> int:
    """Worker entry (see agent.supervisor): run every camera of `jobs` until `stop` is set."""
    if not jobs:
        stop.wait()
        return 0
    import cv2

    cv2.setNumThreads(1)  # many cameras per core: OpenCV's own thread pool would only add contention
    first = jobs[0]
    outbox = Outbox(first.outbox_path, agent_id=first.agent_id, max_bytes=first.outbox_max_bytes,
                    max_rows=first.outbox_max_rows, owner=False)
    store = SnapshotStore(first.snapshot_dir, quota_bytes=first.snapshot_quota_bytes)
    topics = Topics(first.topic_prefix)
    last: dict[str, CameraReport] = {}

    def report_sink(report: CameraReport) -> None:
        last[report.camera_id] = report
        if stop.is_set():
            # Stopped on purpose (reload, shutdown): the pipelines' last reports say "disconnected", which the
            # status machine would publish as a stalled stream. The supervisor knows why these cameras stop.
            return
        reports.put(report)

    threads: list[tuple[str, threading.Thread, bool]] = []  # (camera, thread, beats by itself on frames)
    alarms = []
    for job in jobs:
        sink = _EventSink(job.camera_id, outbox, topics)
        hint = None
        if job.runs_video:
            def factory(job: CameraJob = job) -> FrameSource:
                s = job.pipeline
                inner = open_source(s.uri, s.source, snapshot=s.snapshot)
                return _BeatingSource(inner, lambda: heartbeat.beat(job.camera_id))  # type: ignore[return-value]

            pipeline = CameraPipeline(job.pipeline, on_event=sink, on_report=report_sink, snapshots=store,
                                      source_factory=factory)
            hint = pipeline.hint
            thread = threading.Thread(target=pipeline.run, args=(stop,), name=f"cam-{job.camera_id}", daemon=True)
            thread.start()
            threads.append((job.camera_id, thread, True))
        if job.onvif_events is not None:
            from agent.camera.onvif_events import OnvifMotionEvents

            alarms.append(OnvifMotionEvents(job.onvif_events, on_event=sink, on_report=report_sink, on_hint=hint))
    if alarms:
        thread = threading.Thread(target=_run_alarms, args=(alarms, stop), name="onvif-events", daemon=True)
        thread.start()
        threads.extend((a.settings.camera_id, thread, False) for a in alarms if not _runs_video(jobs, a))

    try:
        while not stop.wait(MONITOR_S):
            for camera_id, thread, beats_on_frames in threads:
                report = last.get(camera_id)
                waiting = report is None or not report.connected
                if thread.is_alive() and (waiting or not beats_on_frames):
                    heartbeat.beat(camera_id)
    finally:
        for _camera_id, thread, _beats in threads:
            thread.join(timeout=5.0)
        outbox.close()
    return 0


def _runs_video(jobs: Sequence[CameraJob], alarm: Any) -> bool:
    return any(j.camera_id == alarm.settings.camera_id and j.runs_video for j in jobs)


def _run_alarms(alarms: Sequence[Any], stop: threading.Event) -> None:
    """Every camera-side alarm subscription of this worker on one asyncio loop, until `stop` is set."""
    import asyncio

    async def main() -> None:
        loop = asyncio.get_running_loop()
        halt = asyncio.Event()
        threading.Thread(target=lambda: (stop.wait(), loop.call_soon_threadsafe(halt.set)), daemon=True,
                         name="onvif-events-stop").start()
        await asyncio.gather(*(alarm.run(halt) for alarm in alarms))

    asyncio.run(main())
