"""Camera-side motion events (`event_source: onvif_events` or `both`): one PullPoint subscription per camera.

The camera's own motion alarm (tns1:RuleEngine/CellMotionDetector/Motion, IsMotion true/false) is turned into
the same `MotionResult`s the video detector makes and run through the same `EventTracker`, so the station gets
the same `MotionEvent`s, with the same hysteresis, whatever the source. With `both`, the alarm only wakes
adaptive decoding (`on_hint`, i.e. `CameraPipeline.hint`) and the video detector makes the events.

The subscription is created for a short lifetime and renewed by us well before it ends (the library's own
renewal timer cannot renew sooner than 48 s, so it is paused), pulled in long polls, re-created after any failure
(a refused Renew or pull, e.g. the camera forgot the subscription in a reboot) with the same capped, jittered
backoff as video sources (and, when the camera rejected our credentials, at most 3 times per 10 minutes:
`AuthRetryPolicy`, so a wrong password never gets the account locked), and watched for silence: a pull that does
not answer within its timeout plus a margin is a dead camera. All four times are in `OnvifEventsSettings`. Runs on
an asyncio loop (the worker's events thread); never raises for camera trouble.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from agent.camera.auth_retry import AuthRetryPolicy
from agent.camera.settings import OnvifEventsSettings
from agent.logsetup import camera_logger
from agent.models import CameraReport, MotionEvent, MotionResult, StatusReason
from agent.motion.tracker import EventTracker
from agent.video.backoff import Backoff

log = logging.getLogger(__name__)

MOTION_TOPICS = ("RuleEngine/CellMotionDetector/Motion", "VideoSource/MotionAlarm")  # Hikvision/Dahua/ONVIF Profile S
MOTION_ITEMS = ("IsMotion", "State")  # the SimpleItem carrying the boolean, by topic family
MESSAGE_LIMIT = 20
AUTH_MESSAGE = "camera events: the camera rejected the user name or password; check them in the configuration"


def motion_flags(messages: Any) -> list[bool]:
    """The IsMotion values, in order, of a PullMessages reply's NotificationMessages (other topics ignored)."""
    flags: list[bool] = []
    for msg in messages or ():
        topic = str(getattr(getattr(msg, "Topic", None), "_value_1", "") or "")
        if not any(topic.endswith(t) for t in MOTION_TOPICS):
            continue
        message = getattr(getattr(msg, "Message", None), "_value_1", None)
        items = getattr(getattr(message, "Data", None), "SimpleItem", None) or ()
        for item in items:
            if getattr(item, "Name", None) in MOTION_ITEMS:
                flags.append(str(getattr(item, "Value", "")).lower() in ("true", "1"))
    return flags


class AlarmState:
    """Pure: the camera's on/off alarm as a detector-like result per pull. A pulse that began and ended between
    two pulls still counts as motion in that pull, so no alarm is lost to the polling rhythm."""

    def __init__(self) -> None:
        self.on = False

    def update(self, flags: list[bool], ts: float) -> MotionResult:
        seen = self.on or any(flags)
        if flags:
            self.on = flags[-1]
        return MotionResult(ts=ts, score=1.0 if seen else 0.0, motion=seen)


class OnvifMotionEvents:
    """One camera's PullPoint loop. `run(stop)` is a coroutine; callbacks must be cheap and thread-safe."""

    def __init__(
        self,
        settings: OnvifEventsSettings,
        *,
        on_event: Callable[[MotionEvent], None],
        on_report: Callable[[CameraReport], None] | None = None,
        on_hint: Callable[[], None] | None = None,
        auth_policy: AuthRetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        # Shared with the camera's pipeline when the worker passes one: the budget is per camera.
        self.auth = auth_policy if auth_policy is not None else AuthRetryPolicy()
        self._on_event, self._on_report, self._on_hint = on_event, on_report, on_hint
        self._log = camera_logger(log, settings.camera_id)
        self.tracker = EventTracker(settings.camera_id, settings.tracker)
        self.alarm = AlarmState()
        self.subscribed = False
        self.error: str | None = None
        self.reason: StatusReason | None = None
        self.pulls = 0
        self.alarms = 0
        self.resubscriptions = 0
        self.renewals = 0
        self.events = 0

    def report(self) -> CameraReport:
        return CameraReport(camera_id=self.settings.camera_id, ts=time.time(), connected=self.subscribed,
                            error=self.reason if self.error else None,
                            error_message=self.error or "", reconnects=self.resubscriptions, events=self.events)

    def _emit(self, events: list[MotionEvent]) -> None:
        for event in events:
            if event.kind == "start":
                self.events += 1
            if self.settings.emit_events:
                try:
                    self._on_event(event)
                except Exception:  # another package's sink: one bad event must not end the subscription
                    self._log.exception("event sink failed for event %s", event.event_id)

    def _state(self, subscribed: bool, error: str | None, reason: StatusReason | None = None) -> None:
        changed = (subscribed, error) != (self.subscribed, self.error)
        self.subscribed, self.error = subscribed, error
        self.reason = (reason or StatusReason.ONVIF_ERROR) if error else None
        if changed and self._on_report is not None:
            self._on_report(self.report())

    async def run(self, stop: asyncio.Event) -> None:
        """Subscribe, pull and re-subscribe until `stop` is set."""
        from agent.camera._onvif_client import EVENT_ERRORS, is_auth_error

        backoff = Backoff()
        while not stop.is_set():
            try:
                await self._session(stop, backoff)
            except EVENT_ERRORS as exc:
                if is_auth_error(exc):
                    self.auth.failed(time.monotonic())
                    message, reason = AUTH_MESSAGE, StatusReason.AUTH_FAILED
                else:
                    message, reason = f"camera events failed ({_describe(exc)}); retrying", None
                if message != self.error:
                    self._log.warning("%s", message)
                self._state(False, message, reason)
            self._emit(self.tracker.flush(time.time()))
            if stop.is_set():
                break
            self.resubscriptions += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._retry_delay(backoff))
        self._state(False, self.error, self.reason)

    def _retry_delay(self, backoff: Backoff) -> float:
        return self.auth.retry_delay(backoff, self._log, "camera events: ")

    async def _session(self, stop: asyncio.Event, backoff: Backoff) -> None:
        from agent.camera._onvif_client import open_pullpoint

        s = self.settings
        async with open_pullpoint(s.host, s.port, s.username, s.password, s.subscription_s) as pullpoint:
            if self.error is not None:
                self._log.info("camera events: subscribed again")
            self._state(True, None)
            backoff.success()
            self.auth.succeeded()
            last_report = next_renew = time.monotonic()
            next_renew += s.renew_s
            while not stop.is_set():
                if time.monotonic() >= next_renew:
                    try:
                        await asyncio.wait_for(pullpoint.renew(), s.silence_margin_s)
                    except TimeoutError:
                        raise TimeoutError(f"no answer to Renew within {s.silence_margin_s:g} s") from None
                    self.renewals += 1
                    next_renew = time.monotonic() + s.renew_s
                try:
                    reply = await asyncio.wait_for(pullpoint.pull(MESSAGE_LIMIT, s.pull_timeout_s), s.silence_s)
                except TimeoutError:
                    raise TimeoutError(f"no answer to PullMessages within {s.silence_s:g} s") from None
                self.pulls += 1
                flags = motion_flags(getattr(reply, "NotificationMessage", None))
                result = self.alarm.update(flags, time.time())
                if result.motion:
                    self.alarms += 1
                    if self._on_hint is not None:
                        self._on_hint()
                self._emit(self.tracker.update(result))
                if self._on_report is not None and time.monotonic() - last_report >= s.report_interval_s:
                    last_report = time.monotonic()
                    self._on_report(self.report())


def _describe(exc: BaseException) -> str:
    """The exception's type and, when it has one, its first line (a SOAP fault's reason), kept short."""
    text = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
