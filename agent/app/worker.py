"""What a camera worker process runs: one pipeline thread per camera, events into the outbox, reports up.

Durability order for a motion event (docs/architecture.md): the pipeline writes the snapshot JPEG, then this
module commits the event (and the snapshot bytes) to the outbox with `synchronous=FULL`, and only then is anything
published. The worker opens the outbox as a non-owner: SQLite's WAL lets several processes insert, and only the
supervisor's instance claims and acknowledges rows.

Liveness: the supervisor's heartbeat must advance on frames processed, not on loop turns, and only a camera's own
thread beats for it (agent.supervisor.channels). A source wrapper beats once per frame the decoder delivers; the
pipeline's reconnect backoff waits on a stop event whose `wait()` is `Heartbeat.idle_wait`, so a camera waiting out
an outage beats once a second from its own thread. A thread stuck inside FFmpeg (opening a silent camera, reading a
dead socket) does neither, and its worker is killed as hung. No timer thread beats for a video camera.

Configuration: a job whose values cannot work (a `ValueError` or `TypeError` while building its settings, source
or pipeline) ends the worker with `WorkerConfigError`, exit 78, which the supervisor does not respawn.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.app.jobs import CameraJob
from agent.camera import CameraPipeline
from agent.camera.auth_retry import AuthRetryPolicy
from agent.logsetup import camera_logger
from agent.models import CameraReport, EventKind, MotionEvent
from agent.mqtt import Topics, payloads, records
from agent.outbox import Outbox, Priority, Record
from agent.storage.snapshots import SnapshotStore
from agent.supervisor import WorkerConfigError
from agent.video import FrameSource, HardwareMemory, open_source

log = logging.getLogger(__name__)

ALARM_BEAT_S = 1.0  # s between beats from the alarm loop; far below the supervisor's 30 s hang timeout
JOIN_S = 5.0  # s to wait for each camera thread at stop; a thread stuck in FFmpeg is a daemon and is left behind
CONFIG_ERRORS = (ValueError, TypeError)  # what building settings, sources and pipelines raise for bad values


class _BeatingSource:
    """A frame source that bumps the camera's heartbeat for every frame it yields."""

    def __init__(self, inner: FrameSource, beat: Callable[[], None]) -> None:
        self._inner = inner
        self._beat = beat

    def frames(self, stop: threading.Event) -> Iterator[Any]:
        for frame in self._inner.frames(stop):
            self._beat()
            yield frame

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _CameraStop(threading.Event):
    """The worker's stop event as one camera's thread sees it: its waits beat that camera's heartbeat.

    The pipeline waits out its reconnect backoff with `stop.wait(delay)` on the camera's own thread, so routing
    the wait through `Heartbeat.idle_wait` shows that this thread is alive and legitimately idle. Setting,
    testing and waiting all act on the worker's one stop event.
    """

    def __init__(self, stop: threading.Event, heartbeat: Any, camera_id: str) -> None:
        super().__init__()
        self._stop, self._heartbeat, self._camera_id = stop, heartbeat, camera_id

    def is_set(self) -> bool:
        return self._stop.is_set()

    def set(self) -> None:
        self._stop.set()

    def clear(self) -> None:
        raise RuntimeError("a camera cannot clear its worker's stop event")

    def wait(self, timeout: float | None = None) -> bool:
        return bool(self._heartbeat.idle_wait(self._camera_id, self._stop, math.inf if timeout is None else timeout))


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


@dataclass
class _Cameras:
    """Everything a worker runs, built (and checked) before any thread starts."""

    outbox: Outbox
    pipelines: list[CameraPipeline] = field(default_factory=list)
    alarms: list[Any] = field(default_factory=list)  # OnvifMotionEvents of this worker's cameras
    alarm_only: list[str] = field(default_factory=list)  # cameras watched through their own alarm only


def run_cameras(jobs: Sequence[CameraJob], reports: Any, heartbeat: Any, stop: threading.Event) -> int:
    """Worker entry (see agent.supervisor): run every camera of `jobs` until `stop` is set.

    Raises `WorkerConfigError` (exit 78, no respawn) when a job's values cannot work.
    """
    if not jobs:
        stop.wait()
        return 0
    import cv2

    cv2.setNumThreads(1)  # many cameras per core: OpenCV's own thread pool would only add contention

    def report_sink(report: CameraReport) -> None:
        if stop.is_set():
            # Stopped on purpose (reload, shutdown): the pipelines' last reports say "disconnected", which the
            # status machine would publish as a stalled stream. The supervisor knows why these cameras stop.
            return
        reports.put(report)

    cameras = _build(jobs, report_sink, heartbeat)
    threads = [threading.Thread(target=p.run, args=(_CameraStop(stop, heartbeat, p.settings.camera_id),),
                                name=f"cam-{p.settings.camera_id}", daemon=True) for p in cameras.pipelines]
    if cameras.alarms:
        threads.append(threading.Thread(target=_run_alarms, args=(cameras.alarms, cameras.alarm_only, heartbeat,
                                                                  stop), name="onvif-events", daemon=True))
    for thread in threads:
        thread.start()
    try:
        stop.wait()
    finally:
        for thread in threads:
            thread.join(timeout=JOIN_S)
        cameras.outbox.close()
    return 0


def _build(jobs: Sequence[CameraJob], report_sink: Callable[[CameraReport], None], heartbeat: Any) -> _Cameras:
    """Open the outbox and build every camera's pipeline and alarm; bad values become `WorkerConfigError`."""
    first = jobs[0]
    try:
        topics = Topics(first.topic_prefix)
        store = SnapshotStore(first.snapshot_dir, quota_bytes=first.snapshot_quota_bytes)
        outbox = Outbox(first.outbox_path, agent_id=first.agent_id, max_bytes=first.outbox_max_bytes,
                        max_rows=first.outbox_max_rows, owner=False)
    except CONFIG_ERRORS as exc:
        raise WorkerConfigError(f"outbox, snapshot or topic settings of camera {first.camera_id}: {exc}") from exc
    cameras = _Cameras(outbox)
    try:
        for job in jobs:
            try:
                _add_camera(cameras, job, topics, store, report_sink, heartbeat)
            except CONFIG_ERRORS as exc:
                raise WorkerConfigError(f"camera {job.camera_id}: {exc}") from exc
    except BaseException:
        outbox.close()
        raise
    return cameras


def _add_camera(cameras: _Cameras, job: CameraJob, topics: Topics, store: SnapshotStore,
                report_sink: Callable[[CameraReport], None], heartbeat: Any) -> None:
    sink = _EventSink(job.camera_id, cameras.outbox, topics)
    hint = None
    # One login budget per camera: its stream and its PullPoint alarm log in with the same account, and the camera
    # locks that account after a few failures whichever of the two made them.
    auth = AuthRetryPolicy()
    if job.runs_video:
        s = job.pipeline
        # Built once here only to check the URI and settings (no I/O happens before `frames()`); each
        # connection attempt of the pipeline builds a fresh source through the factory.
        open_source(s.uri, s.source, snapshot=s.snapshot)

        memory = HardwareMemory()  # a hardware decoder that failed this stream is not tried again

        def factory(job: CameraJob = job) -> FrameSource:
            s = job.pipeline
            inner = open_source(s.uri, s.source, snapshot=s.snapshot, hardware_memory=memory)
            return _BeatingSource(inner, lambda: heartbeat.beat(job.camera_id))  # type: ignore[return-value]

        pipeline = CameraPipeline(s, on_event=sink, on_report=report_sink, snapshots=store, source_factory=factory,
                                  auth_policy=auth)
        hint = pipeline.hint
        cameras.pipelines.append(pipeline)
    if job.onvif_events is not None:
        from agent.camera.onvif_events import OnvifMotionEvents

        cameras.alarms.append(OnvifMotionEvents(job.onvif_events, on_event=sink, on_report=report_sink,
                                                on_hint=hint, auth_policy=auth))
        if not job.runs_video:
            cameras.alarm_only.append(job.camera_id)


def _run_alarms(alarms: Sequence[Any], alarm_only: Sequence[str], heartbeat: Any, stop: threading.Event) -> None:
    """Every camera-side alarm subscription of this worker on one asyncio loop, until `stop` is set.

    Alarm-only cameras decode no frames; the loop itself beats for them, so a blocked loop stops beating.
    """
    import asyncio  # only workers with camera-side alarms run a loop; the import costs each worker ~2 MB

    async def pulse(halt: asyncio.Event) -> None:
        while not halt.is_set():
            for camera_id in alarm_only:
                heartbeat.beat(camera_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(halt.wait(), ALARM_BEAT_S)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        halt = asyncio.Event()
        threading.Thread(target=lambda: (stop.wait(), loop.call_soon_threadsafe(halt.set)), daemon=True,
                         name="onvif-events-stop").start()
        await asyncio.gather(pulse(halt), *(alarm.run(halt) for alarm in alarms))

    asyncio.run(main())
