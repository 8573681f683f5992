"""The camera status machine: a run of `CameraReport`s in, a damped `CameraStatus` out, only when it changes.

Pure apart from the two injected clocks (`mono` for ages and dwell times, `wall` for the published `since`), so
every transition is unit-tested with a fake clock. One `StatusMachine` per camera; `StatusBoard` (board.py) holds
them all behind a lock for the supervisor (which feeds reports) and the health thread (which ticks and reads them).

How a fault becomes visible within 15 s and a recovery within 10 s, with the default thresholds:
- a failed connection (refused, timeout, auth, unreachable, ONVIF, decoder) is offline on the first report that
  carries it — worse news is never delayed;
- a stream that stops delivering frames is offline once its last new frame is `stall_offline_s` old (the age keeps
  growing between reports, because `tick()` re-evaluates with the current clock);
- a worker that stops reporting at all is offline after `report_silence_s`;
- better news must hold for `recover_dwell_s` (a few seconds) before it is published, and for
  `flap_recover_dwell_s` while the camera is flapping, so a camera that drops every few seconds shows one steady
  offline instead of a storm of retained messages.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from agent.i18n import N_
from agent.models import CameraReport, CameraState, CameraStatus, StatusReason

Clock = Callable[[], float]

OFFLINE_REASONS = frozenset(
    {
        StatusReason.UNREACHABLE,
        StatusReason.AUTH_FAILED,
        StatusReason.ONVIF_ERROR,
        StatusReason.RTSP_REFUSED,
        StatusReason.RTSP_TIMEOUT,
        StatusReason.STREAM_STALLED,
        StatusReason.FROZEN_IMAGE,
        StatusReason.DECODER_ERROR,
        StatusReason.DISABLED,
    }
)

# Canonical plain-English message per reason (translated by the CLI tools through agent.i18n).
REASON_MESSAGES: dict[StatusReason, str] = {
    StatusReason.NONE: N_("camera is working normally"),
    StatusReason.UNREACHABLE: N_("camera does not answer on the network"),
    StatusReason.AUTH_FAILED: N_("camera rejected the user name or password"),
    StatusReason.ONVIF_ERROR: N_("camera answered ONVIF requests with an error"),
    StatusReason.RTSP_REFUSED: N_("camera refused the video stream connection"),
    StatusReason.RTSP_TIMEOUT: N_("camera accepted the connection but the video stream did not start in time"),
    StatusReason.STREAM_STALLED: N_("video stream stopped delivering frames"),
    StatusReason.FROZEN_IMAGE: N_("camera keeps sending the same image"),
    StatusReason.DECODER_ERROR: N_("video from the camera could not be decoded"),
    StatusReason.DISABLED: N_("camera is disabled"),
    StatusReason.LOW_FPS: N_("camera delivers fewer frames per second than needed"),
    StatusReason.FREQUENT_RECONNECTS: N_("video stream keeps dropping and reconnecting"),
    StatusReason.BLACK_IMAGE: N_("image is black"),
    StatusReason.UNIFORM_IMAGE: N_("image is one flat colour (lens covered or sensor fault)"),
    StatusReason.STUCK_IR: N_("camera is stuck in infra-red night mode during the day"),
    StatusReason.STARTING: N_("waiting for the first frames from the camera"),
}

_SEVERITY = {CameraState.ONLINE: 0, CameraState.DEGRADED: 1, CameraState.OFFLINE: 2}


@dataclass(frozen=True, slots=True)
class StatusThresholds:
    """Tuning of the machine. Every value is in seconds, frames per second or grey levels, as its name says."""

    stall_offline_s: float = 8.0  # nothing arriving and the last frame older than this → offline stream_stalled
    frozen_degraded_s: float = 8.0  # packets arrive but the picture has not changed for this long → degraded frozen
    report_silence_s: float = 12.0  # no report from the worker → offline; > 2 x the pipeline's 5 s report interval
    startup_grace_s: float = 30.0  # "starting" may last this long before it counts as a stalled stream
    frozen_offline_s: float = 4.0  # frozen this much longer → offline; the pipeline flags frozen at 10 s → 14 s
    min_fps: float = 1.0  # fps received below this while connected → degraded low_fps
    fps_grace_s: float = 12.0  # connected this long before judging fps (the first rate straddles the reconnect)
    reconnect_window_s: float = 600.0  # drops of a working stream are counted over this window
    reconnects_degraded: int = 3  # this many drops in the window → degraded frequent_reconnects
    black_luma: float = 24.0  # mean grey level at or below this (with a flat image) → black; video black is Y=16
    uniform_std: float = 4.0  # grey-level standard deviation at or below this → black or uniform image
    degrade_dwell_s: float = 5.0  # a degraded condition must last this long (a passing shadow is not a fault)
    recover_dwell_s: float = 3.0  # better news must last this long; < 10 s recovery budget with 2 s reports
    frozen_recover_dwell_s: float = 14.0  # after a reconnect to a frozen camera: > frozen_degraded_s + one report
    reason_dwell_s: float = 4.0  # a new reason with the same state must last this long (retries alternate)
    flap_window_s: float = 300.0  # falls into offline are counted over this window
    flap_offline_entries: int = 3  # this many falls into offline in the window → flapping (one outage is one)
    flap_recover_dwell_s: float = 60.0  # while flapping, better news must last this long

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if getattr(self, name) < 0:
                raise ValueError(f"status threshold {name} must not be negative")


@dataclass(frozen=True, slots=True)
class _Verdict:
    state: CameraState
    reason: StatusReason
    detail: str = ""

    @property
    def key(self) -> tuple[CameraState, StatusReason]:
        return (self.state, self.reason)


@dataclass(slots=True)
class _Pending:
    verdict: _Verdict
    mono: float
    wall: float


@dataclass(slots=True)
class _Memory:
    """What the machine remembers between reports."""

    report: CameraReport | None = None
    report_mono: float = 0.0
    connected_since: float | None = None  # mono of the first connected report of the current connection
    frozen_since: float | None = None  # mono of the first frozen report of the current frozen run
    frozen_reconnects: int | None = None  # the pipeline's reconnect count when the latest frozen run began
    drops: deque[float] = field(default_factory=deque)  # mono of each drop of a working stream
    offline_entries: deque[float] = field(default_factory=deque)  # mono of each fall into offline


def message_for(reason: StatusReason, detail: str = "") -> str:
    """The published message: the canonical sentence for the reason, then the pipeline's detail if any."""
    base = REASON_MESSAGES.get(reason, str(reason))
    return f"{base} ({detail})" if detail else base


class StatusMachine:
    """One camera's status. Feed it with `observe(report)`, call `tick()` every second; both return a status to
    publish (retained) when the published state or reason changes, else None. The first call returns the initial
    status so that a fresh agent publishes something for every camera."""

    def __init__(
        self,
        camera_id: str,
        *,
        thresholds: StatusThresholds | None = None,
        mono: Clock = time.monotonic,
        wall: Clock = time.time,
        daytime: Callable[[float], bool] | None = None,
        enabled: bool = True,
    ) -> None:
        self.camera_id = camera_id
        self._t = thresholds or StatusThresholds()
        self._mono = mono
        self._wall = wall
        self._daytime = daytime  # wall epoch -> is it day there; None disables the stuck-IR check
        self._enabled = enabled
        self._created = mono()
        self._mem = _Memory()
        self._pending: _Pending | None = None
        first = _Verdict(CameraState.DEGRADED, StatusReason.STARTING) if enabled else _disabled()
        self._applied = first
        self._since = wall()
        self._announced = False

    # -- inputs ---------------------------------------------------------------------------------------------------
    def observe(self, report: CameraReport) -> CameraStatus | None:
        """Take one report from the camera pipeline."""
        if report.camera_id != self.camera_id:
            raise ValueError(f"report for {report.camera_id!r} given to the machine of {self.camera_id!r}")
        now = self._mono()
        mem = self._mem
        prev = mem.report
        if report.connected:
            if mem.connected_since is None or prev is None or not prev.connected:
                mem.connected_since = now
        else:
            mem.connected_since = None
        if self._frozen_evidence(report):
            if mem.frozen_since is None:
                mem.frozen_since = now
                if self._applied.reason is not StatusReason.FROZEN_IMAGE:  # a new episode, not its next run
                    mem.frozen_reconnects = report.reconnects
        else:
            mem.frozen_since = None
        # A drop of a working stream: the reconnect counter moved while the previous report was connected. Failed
        # retries during an outage (previous report not connected) are not drops; one outage counts once.
        if prev is not None and prev.connected and (report.reconnects > prev.reconnects or not report.connected):
            mem.drops.append(now)
        mem.report = report
        mem.report_mono = now
        return self._evaluate(now)

    def tick(self) -> CameraStatus | None:
        """Re-evaluate with the current clock (ages grow, dwell times elapse, a silent worker is noticed)."""
        return self._evaluate(self._mono())

    def set_enabled(self, enabled: bool) -> CameraStatus | None:
        """Disable (offline/disabled at once) or re-enable (starting at once) the camera."""
        if enabled == self._enabled:
            return None
        self._enabled = enabled
        self._mem = _Memory()
        self._created = self._mono()
        verdict = _Verdict(CameraState.DEGRADED, StatusReason.STARTING) if enabled else _disabled()
        return self._apply(verdict, self._mono(), self._wall())

    # -- outputs --------------------------------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self._enabled

    def current(self) -> CameraStatus:
        """The published state and reason with the latest frame time, fps and decode mode."""
        v = self._applied
        report = self._mem.report
        status = CameraStatus(
            camera_id=self.camera_id,
            state=v.state,
            reason=v.reason,
            message=message_for(v.reason, v.detail),
            since=self._since,
        )
        if report is None:
            return status
        return replace(
            status,
            last_frame_ts=report.last_frame_ts,
            fps_in=report.fps_in,
            fps_analysed=report.fps_analysed,
            decode_mode=report.decode_mode,
        )

    def last_report(self) -> CameraReport | None:
        return self._mem.report

    def flapping(self) -> bool:
        self._forget_old(self._mono())
        return len(self._mem.offline_entries) >= self._t.flap_offline_entries

    # -- the machine ----------------------------------------------------------------------------------------------
    def _evaluate(self, now: float) -> CameraStatus | None:
        self._forget_old(now)
        verdict = self._classify(now)
        wall = self._wall()
        if verdict.key == self._applied.key:
            self._pending = None
            self._applied = verdict  # keep the freshest detail; not a change
            return self._announce()
        if self._pending is None or self._pending.verdict.key != verdict.key:
            self._pending = _Pending(verdict, now, wall)
        else:
            self._pending.verdict = verdict
        if now - self._pending.mono >= self._dwell(self._applied, verdict):
            return self._apply(verdict, now, self._pending.wall)
        return self._announce()

    def _announce(self) -> CameraStatus | None:
        if self._announced:
            return None
        self._announced = True
        return self.current()

    def _apply(self, verdict: _Verdict, now: float, since: float) -> CameraStatus:
        previous = self._applied.state
        self._applied = verdict
        self._since = since
        self._pending = None
        if verdict.state is CameraState.OFFLINE and previous is not CameraState.OFFLINE:
            self._mem.offline_entries.append(now)
        self._announced = True
        return self.current()

    def _dwell(self, cur: _Verdict, new: _Verdict) -> float:
        t = self._t
        if cur.reason is StatusReason.DISABLED:
            return 0.0
        if cur.reason is StatusReason.STARTING:  # the first real verdict is news, not flapping
            return t.degrade_dwell_s if new.state is CameraState.DEGRADED else 0.0
        worse = _SEVERITY[new.state] - _SEVERITY[cur.state]
        if worse > 0:
            # Frozen evidence is already seconds of unchanged picture; other degraded conditions must persist.
            immediate = new.state is CameraState.OFFLINE or new.reason is StatusReason.FROZEN_IMAGE
            return 0.0 if immediate else t.degrade_dwell_s
        if worse < 0 and cur.reason is StatusReason.FROZEN_IMAGE and self._reconnected_since_frozen():
            # A new session to a hung encoder starts with one "new" picture; only time shows it is still frozen.
            return t.frozen_recover_dwell_s
        if worse < 0:
            flapping = len(self._mem.offline_entries) >= t.flap_offline_entries
            return t.flap_recover_dwell_s if flapping else t.recover_dwell_s
        return t.reason_dwell_s

    def _reconnected_since_frozen(self) -> bool:
        r, since = self._mem.report, self._mem.frozen_reconnects
        return r is not None and since is not None and r.reconnects > since

    def _frozen_evidence(self, r: CameraReport) -> bool:
        """The pipeline says frozen, or packets keep arriving while the last *new* picture grows old."""
        if not r.connected:
            return False
        # At least min_fps: a stalled stream can still let a straggler packet through (one in 5 s is 0.2 fps), and
        # an aging picture then means "nothing arrives", not "the same picture arrives" (that is stream_stalled).
        flowing = r.fps_in is not None and r.fps_in >= self._t.min_fps
        aged = r.last_frame_age_s is not None and r.last_frame_age_s > self._t.frozen_degraded_s
        return r.frozen or (flowing and aged)

    def _forget_old(self, now: float) -> None:
        mem, t = self._mem, self._t
        while mem.offline_entries and now - mem.offline_entries[0] > t.flap_window_s:
            mem.offline_entries.popleft()
        while mem.drops and now - mem.drops[0] > t.reconnect_window_s:
            mem.drops.popleft()

    def _classify(self, now: float) -> _Verdict:
        t, mem = self._t, self._mem
        if not self._enabled:
            return _disabled()
        r = mem.report
        if r is None:
            if now - self._created > t.startup_grace_s:
                return _offline(StatusReason.STREAM_STALLED, "no report from the camera worker")
            return _Verdict(CameraState.DEGRADED, StatusReason.STARTING)
        silent = now - mem.report_mono
        if silent > t.report_silence_s:
            return _offline(StatusReason.STREAM_STALLED, f"no report from the camera worker for {silent:.0f} s")
        if not r.connected:
            if r.error is not None and r.error in OFFLINE_REASONS:
                return _offline(r.error, r.error_message)
            if r.last_frame_ts is None and now - self._created <= t.startup_grace_s:
                return _Verdict(CameraState.DEGRADED, StatusReason.STARTING)
            return _offline(StatusReason.STREAM_STALLED, r.error_message)
        if r.last_frame_age_s is None:
            waited = now - (mem.connected_since if mem.connected_since is not None else mem.report_mono)
            if waited > t.stall_offline_s:
                return _offline(StatusReason.STREAM_STALLED, "connected but no frame has arrived")
            if now - self._created <= t.startup_grace_s or r.last_frame_ts is None:
                return _Verdict(CameraState.DEGRADED, StatusReason.STARTING)
        flowing = r.fps_in is not None and r.fps_in > 0
        if not flowing and r.last_frame_age_s is not None:
            # Nothing arriving: the frame age keeps growing between reports, so count the silence in.
            age = r.last_frame_age_s + silent
            if age > t.stall_offline_s:
                return _offline(StatusReason.STREAM_STALLED, f"last frame {age:.0f} s ago")
        if mem.frozen_since is not None:
            if now - mem.frozen_since >= t.frozen_offline_s:
                return _offline(StatusReason.FROZEN_IMAGE)
            return _Verdict(CameraState.DEGRADED, StatusReason.FROZEN_IMAGE)
        if r.luma_std is not None and r.luma_std <= t.uniform_std:
            dark = r.mean_luma is not None and r.mean_luma <= t.black_luma
            return _Verdict(CameraState.DEGRADED, StatusReason.BLACK_IMAGE if dark else StatusReason.UNIFORM_IMAGE)
        if r.greyscale and self._daytime is not None and self._daytime(r.ts):
            return _Verdict(CameraState.DEGRADED, StatusReason.STUCK_IR)
        connected_for = now - mem.connected_since if mem.connected_since is not None else 0.0
        if r.fps_in is not None and r.fps_in < t.min_fps and connected_for >= t.fps_grace_s:
            return _Verdict(CameraState.DEGRADED, StatusReason.LOW_FPS, f"{r.fps_in:.1f} fps")
        if len(mem.drops) >= t.reconnects_degraded:
            minutes = t.reconnect_window_s / 60
            detail = f"{len(mem.drops)} drops in {minutes:.0f} min"
            return _Verdict(CameraState.DEGRADED, StatusReason.FREQUENT_RECONNECTS, detail)
        return _Verdict(CameraState.ONLINE, StatusReason.NONE)


def daytime_between(start_h: float = 7.0, end_h: float = 17.0, *, utc_offset_h: float = 7.0) -> Callable[[float], bool]:
    """A `daytime` callable for the stuck-IR check: True between start_h and end_h local time. The offset is
    explicit (Vietnam is UTC+7) because a Pi's clock is often left in UTC. 07:00-17:00 stays clear of dawn and
    dusk all year at Vietnamese latitudes, when a camera legitimately switches between colour and IR."""
    if not (0 <= start_h < end_h <= 24):
        raise ValueError(f"daytime hours must satisfy 0 <= start < end <= 24, got {start_h}..{end_h}")

    def is_day(ts: float) -> bool:
        hour = ((ts / 3600.0) + utc_offset_h) % 24.0
        return start_h <= hour < end_h

    return is_day


def _offline(reason: StatusReason, detail: str = "") -> _Verdict:
    return _Verdict(CameraState.OFFLINE, reason, detail)


def _disabled() -> _Verdict:
    return _Verdict(CameraState.OFFLINE, StatusReason.DISABLED)
