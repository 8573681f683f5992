"""One camera's pipeline, run by a thread in a camera worker process: source -> detector -> tracker -> sinks.

It never gives up: a failed connection or read is reported (a typed `StatusReason` in the next `CameraReport`)
and retried after a capped, jittered backoff. Credentials the camera rejected are retried at most 3 times per
10 minutes (`AuthRetryPolicy`), so a wrong password never gets the account locked. It only observes; the
supervisor's status machine turns reports into the published camera status.

Adaptive decoding: keyframes only while quiet; when a keyframe shows motion (or an external hint arrives, e.g. a
camera-side ONVIF motion event through `hint()`), full decoding starts with the very next packet, and keyframes-only
resumes once the event has ended and the hint has expired.

Order of durability: an event's snapshot JPEG is written before `on_event` is called, so whatever the event sink
commits (the outbox) can point at a file that exists.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from agent.camera.auth_retry import AuthRetryPolicy
from agent.camera.settings import PipelineSettings
from agent.logsetup import camera_logger
from agent.models import CameraReport, DecodeMode, EventKind, MotionEvent, StatusReason
from agent.motion import EventTracker, MotionDetector, encode_jpeg
from agent.storage.snapshots import SnapshotStore
from agent.video import (
    AuthFailed,
    Backoff,
    Frame,
    FrameSource,
    FrameWatchdog,
    OpenTimeout,
    Refused,
    SourceError,
    Stalled,
    Unreachable,
    is_greyscale,
    open_source,
)
from agent.video.probe import port_answers, stream_endpoint

log = logging.getLogger(__name__)

PORT_FAILURES = (Refused, Unreachable, OpenTimeout)  # failures a TCP connect can see the end of
FROZEN_RECONNECT_FACTOR = 3.0  # reconnect once frozen for 3x the frozen threshold: some encoders need a new session
ANALYSE_SLACK = 0.8  # accept a frame at 80 % of the analysis period, so 15 fps -> 5 fps takes every 3rd frame
SAMPLE_STEP = 8  # px grid for the luma statistics in reports
STATS_EVERY = 10  # analysed frames between luma/greyscale samples (every 2 s at 5 fps)

EventSink = Callable[[MotionEvent], None]
ReportSink = Callable[[CameraReport], None]
SourceFactory = Callable[[], FrameSource]


class CameraPipeline:
    def __init__(
        self,
        settings: PipelineSettings,
        *,
        on_event: EventSink,
        on_report: ReportSink,
        snapshots: SnapshotStore | None = None,
        source_factory: SourceFactory | None = None,
        auth_policy: AuthRetryPolicy | None = None,
        backoff: Callable[[], Backoff] = Backoff,
    ) -> None:
        self.settings = settings
        self._backoff = backoff  # a factory: each run() starts a fresh outage record
        # Shared with the camera's PullPoint loop when the worker passes one: the budget is per camera.
        self.auth = auth_policy if auth_policy is not None else AuthRetryPolicy()
        self._on_event, self._on_report, self._snapshots = on_event, on_report, snapshots
        self._factory = source_factory or (
            lambda: open_source(settings.uri, settings.source, snapshot=settings.snapshot)
        )
        self._log = camera_logger(log, settings.camera_id)
        self.detector = MotionDetector(settings.motion)
        self.tracker = EventTracker(settings.camera_id, settings.tracker)
        self.watchdog = FrameWatchdog(settings.watchdog)
        self._lock = threading.Lock()  # guards the report state below against the reporter thread
        self._source: FrameSource | None = None
        self._connected = False
        self._error: SourceError | None = None
        self._frozen = False
        self._frames_in_base = 0  # packets counted by sources already closed
        self._frames_analysed = 0
        self._reconnects = 0
        self._stalls = 0
        self._events = 0
        self._last_frame_ts: float | None = None
        self._luma: tuple[float, float] | None = None
        self._grey: bool | None = None
        self._hint_until = -1.0
        self._last_analysed_ts = -1e18
        self._peak_frame: Frame | None = None
        self._snap_peak_ts: float | None = None
        self._rate_prev: tuple[float, int, int] | None = None

    # -- public ------------------------------------------------------------------------------------------------
    def hint(self) -> None:
        """An external motion hint (camera-side ONVIF event): decode fully for `hint_hold_s` in adaptive mode."""
        self._hint_until = time.monotonic() + self.settings.hint_hold_s
        source = self._source
        if source is not None and self.settings.source.decode_mode == DecodeMode.ADAPTIVE:
            source.set_keyframes_only(False)

    def run(self, stop: threading.Event) -> None:
        """Blocking: read, analyse and report until `stop` is set. Never raises for camera trouble."""
        halt = threading.Event()  # set when run() returns for any reason (stop, or the end of a file)
        reporter = threading.Thread(target=self._report_loop, args=(halt,), name=f"report-{self.settings.camera_id}",
                                    daemon=True)
        reporter.start()
        backoff = self._backoff()
        try:
            while not stop.is_set():
                try:
                    if self._session(stop, backoff):
                        break  # a file or image sequence ended: nothing to reconnect to
                except SourceError as exc:
                    self._failed(exc)
                    if isinstance(exc, AuthFailed):
                        self.auth.failed(time.monotonic())
                if stop.is_set():
                    break
                delay = self._retry_delay(backoff)
                self._log.debug("reconnecting in %.1f s", delay)
                if self._wait_to_reconnect(stop, delay):
                    break
                self._reconnects += 1
        finally:
            for event in self.tracker.flush(time.time()):
                self._emit(event)
            with self._lock:
                self._connected = False
            halt.set()
            reporter.join()
            self._on_report(self.report())

    def _wait_to_reconnect(self, stop: threading.Event, delay: float) -> bool:
        """Wait out `delay`, True if stopped. After a connection-level failure (refused, unreachable, no answer),
        a bare TCP connect every `reconnect_probe_s` ends the wait as soon as the camera's port answers again; a
        stall or a rejected login keeps the whole wait (the port answered all along)."""
        endpoint = stream_endpoint(self.settings.uri)
        if endpoint is None or not isinstance(self._error, PORT_FAILURES) or self.auth.wait_s(time.monotonic()) > 0:
            return stop.wait(delay)
        deadline = time.monotonic() + delay
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if stop.wait(min(remaining, self.settings.reconnect_probe_s)):
                return True
            if port_answers(*endpoint):
                self._log.debug("port answers again: reconnecting now")
                return False

    def report(self) -> CameraReport:
        """A report of the current state; safe to call from any thread."""
        now = time.monotonic()
        with self._lock:
            source = self._source
            frames_in = self._frames_in_base + (source.packets_in if source is not None else 0)
            fps_in = fps_an = None
            if self._rate_prev is not None and now - self._rate_prev[0] > 0.5:
                dt = now - self._rate_prev[0]
                fps_in = (frames_in - self._rate_prev[1]) / dt
                fps_an = (self._frames_analysed - self._rate_prev[2]) / dt
            if self._rate_prev is None or now - self._rate_prev[0] >= self.settings.report_interval_s * 0.5:
                self._rate_prev = (now, frames_in, self._frames_analysed)
            error = self._error
            if error is None and self._frozen:
                reason, message = StatusReason.FROZEN_IMAGE, "the picture has not changed; the camera may be hung"
            else:
                reason = error.reason if error is not None else None
                message = error.message if error is not None else ""
            return CameraReport(
                camera_id=self.settings.camera_id,
                ts=time.time(),
                connected=self._connected,
                error=reason,
                error_message=message,
                decode_mode=self.settings.source.decode_mode,
                frames_in=frames_in,
                frames_analysed=self._frames_analysed,
                fps_in=fps_in,
                fps_analysed=fps_an,
                last_frame_ts=self._last_frame_ts,
                last_frame_age_s=self.watchdog.last_new_frame_age(now),
                reconnects=self._reconnects,
                stalls=self._stalls,
                frozen=self._frozen,
                mean_luma=None if self._luma is None else self._luma[0],
                luma_std=None if self._luma is None else self._luma[1],
                greyscale=self._grey,
                events=self._events,
            )

    # -- the loop ----------------------------------------------------------------------------------------------
    def _report_loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.report_interval_s):
            self._on_report(self.report())

    def _set_state(self, *, connected: bool, error: SourceError | None, frozen: bool) -> None:
        with self._lock:
            changed = (connected, error, frozen) != (self._connected, self._error, self._frozen)
            self._connected, self._error, self._frozen = connected, error, frozen
        if changed:
            self._on_report(self.report())

    def _failed(self, exc: SourceError) -> None:
        if isinstance(exc, Stalled):
            self._stalls += 1
        if self._error is None or type(self._error) is not type(exc):
            self._log.warning("%s", exc.message)
        self._close_source()
        self._set_state(connected=False, error=exc, frozen=False)
        for event in self.tracker.flush(time.time()):  # an event does not carry on across an outage
            self._emit(event)
        self._peak_frame = None

    def _retry_delay(self, backoff: Backoff) -> float:
        return self.auth.retry_delay(backoff, self._log, "",
                                     " (fix the password in the configuration and reload to retry now)")

    def _close_source(self) -> None:
        with self._lock:
            if self._source is not None:
                self._frames_in_base += self._source.packets_in
            self._source = None

    def _session(self, stop: threading.Event, backoff: Backoff) -> bool:
        """One connection: True when a finite source ended normally, False when stopped; raises SourceError."""
        s = self.settings
        source = self._factory()
        adaptive = s.source.decode_mode == DecodeMode.ADAPTIVE
        with self._lock:
            self._source = source
        source.set_keyframes_only(s.source.decode_mode == DecodeMode.KEYFRAME or (adaptive and not self._busy()))
        opened = time.monotonic()
        self.watchdog.reset()
        period = ANALYSE_SLACK / s.source.analysis_fps
        first = True  # the first analysed frame of this session is reported at once (see below)
        try:
            for frame in source.frames(stop):
                now = time.monotonic()
                if not self._connected or self._error is not None:
                    if self._error is not None:
                        self._log.info("stream back after %d attempt(s)", backoff.attempts)
                    backoff.success()
                    self.auth.succeeded()
                    self._set_state(connected=True, error=None, frozen=self._frozen)
                if frame.ts - self._last_analysed_ts < period and not frame.keyframe:
                    self._check_stall(now, opened)
                    continue
                self._analyse(frame, now)
                if first:
                    # The report sent on connecting carries no new picture yet (a new pipeline: "starting"; after
                    # an outage: the age of the last frame before it). Without this one the status machine would
                    # see the stream work only at the next periodic report, up to report_interval_s (5 s) later:
                    # half the 10 s recovery budget.
                    first = False
                    self._on_report(self.report())
                if adaptive:
                    source.set_keyframes_only(not self._busy())
                if self.watchdog.frozen(now) != self._frozen:
                    self._set_state(connected=True, error=None, frozen=not self._frozen)
                    if self._frozen:
                        self._log.warning("picture frozen for %.0f s", s.watchdog.frozen_after_s)
                if self._frozen and (self.watchdog.last_new_frame_age(now) or 0) > (
                        FROZEN_RECONNECT_FACTOR * s.watchdog.frozen_after_s):
                    raise Stalled(f"{source.describe()}: picture frozen; reconnecting")
                self._check_stall(now, opened)
            if source.live and not stop.is_set():
                raise Stalled(f"{source.describe()}: the stream ended")
        finally:
            self._close_source()
        return not stop.is_set()

    def _check_stall(self, now: float, opened: float) -> None:
        if self.watchdog.stalled(now, opened):
            raise Stalled(f"no new frame for {self.settings.watchdog.stall_after_s:.0f} s")

    def _busy(self) -> bool:
        return self.tracker.active or self.tracker.peak_ts is not None or time.monotonic() < self._hint_until

    def _analyse(self, frame: Frame, now: float) -> None:
        self._last_analysed_ts = frame.ts
        self.watchdog.frame(frame.y, now)
        result = self.detector.step(frame.y, frame.ts)
        events = self.tracker.update(result)
        if self.tracker.peak_ts == frame.ts:
            self._peak_frame = frame
        with self._lock:
            self._frames_analysed += 1
            self._last_frame_ts = frame.ts
            if self._frames_analysed % STATS_EVERY == 1:  # picture statistics change slowly: sample them
                mean, std = cv2.meanStdDev(np.ascontiguousarray(frame.y[::SAMPLE_STEP, ::SAMPLE_STEP]))
                self._luma = (float(mean[0, 0]), float(std[0, 0]))
                if frame.image is not None and not isinstance(frame.image, np.ndarray):
                    self._grey = is_greyscale(frame.image)
        for event in events:
            self._emit(event)
        if self.tracker.peak_ts is None:
            self._peak_frame = None

    def _emit(self, event: MotionEvent) -> None:
        if event.kind == EventKind.START:
            self._events += 1
            self._snap_peak_ts = None
        event = self._with_snapshot(event)
        if event.kind == EventKind.END:
            self._snap_peak_ts = None
        try:
            self._on_event(event)
        except Exception:  # the sink is another package's code; one bad event must not stop the camera
            self._log.exception("event sink failed for event %s", event.event_id)

    def _with_snapshot(self, event: MotionEvent) -> MotionEvent:
        store, frame = self._snapshots, self._peak_frame
        if store is None:
            return event
        path = store.path_for(event.event_id)
        if frame is not None and event.peak_ts == frame.ts and self._snap_peak_ts != frame.ts:
            try:
                path = store.put(event.event_id, encode_jpeg(frame.bgr(), self.settings.jpeg))
                self._snap_peak_ts = frame.ts
            except (OSError, ValueError) as exc:
                self._log.warning("cannot write snapshot for event %s: %s", event.event_id, exc)
                return event
        if self._snap_peak_ts is None:
            return event
        return dataclasses.replace(event, snapshot_path=str(path))
