"""The camera status machine: reasons, timing budgets, damping and publish-on-change, with an injected clock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent.health.board import StatusBoard
from agent.health.status import REASON_MESSAGES, StatusMachine, StatusThresholds
from agent.models import CameraReport, CameraState, StatusReason

REPORT_EVERY_S = 2.0  # the pipeline reports every few seconds; 2 s is what the budgets assume


class FakeClock:
    """Monotonic and wall clocks that move only when the test says so."""

    def __init__(self) -> None:
        self.mono_t = 100.0
        self.wall_t = 1_800_000_000.0

    def mono(self) -> float:
        return self.mono_t

    def wall(self) -> float:
        return self.wall_t

    def advance(self, seconds: float) -> None:
        self.mono_t += seconds
        self.wall_t += seconds


def good(cam: str = "cam1", **kw: object) -> CameraReport:
    base = CameraReport(
        camera_id=cam, ts=0.0, connected=True, frames_in=100, frames_analysed=50, fps_in=10.0, fps_analysed=5.0,
        last_frame_ts=0.0, last_frame_age_s=0.1, mean_luma=110.0, luma_std=40.0, greyscale=False,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def failing(reason: StatusReason, cam: str = "cam1", **kw: object) -> CameraReport:
    base = CameraReport(camera_id=cam, ts=0.0, connected=False, error=reason, error_message="detail")
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def machine(clock: FakeClock, **kw: object) -> StatusMachine:
    return StatusMachine("cam1", mono=clock.mono, wall=clock.wall, **kw)  # type: ignore[arg-type]


def run(m: StatusMachine, clock: FakeClock, report: CameraReport, seconds: float) -> list[tuple[float, object]]:
    """Feed `report` every REPORT_EVERY_S and tick every second for `seconds`; return (elapsed, status) changes."""
    out = []
    elapsed = 0.0
    while elapsed < seconds:
        if elapsed % REPORT_EVERY_S == 0:
            s = m.observe(report)
            if s is not None:
                out.append((elapsed, s))
        clock.advance(1.0)
        elapsed += 1.0
        s = m.tick()
        if s is not None:
            out.append((elapsed, s))
    return out


def test_status_initial_is_starting_and_announced_once(clock: FakeClock) -> None:
    """A new camera publishes degraded/starting once, then nothing until something changes."""
    m = machine(clock)
    first = m.tick()
    assert first is not None and first.state is CameraState.DEGRADED and first.reason is StatusReason.STARTING
    assert m.tick() is None


def test_status_first_frames_go_online_immediately(clock: FakeClock) -> None:
    """Frames arriving on a starting camera publish online at once, with `since` at that moment."""
    m = machine(clock)
    m.tick()
    clock.advance(3)
    s = m.observe(good())
    assert s is not None and s.state is CameraState.ONLINE and s.reason is StatusReason.NONE
    assert s.since == clock.wall_t and s.fps_in == 10.0


def test_status_since_kept_across_unchanged_ticks(clock: FakeClock) -> None:
    """Unchanged reports publish nothing and keep the original `since`."""
    m = machine(clock)
    s = m.observe(good())
    assert s is not None
    since = s.since
    changes = run(m, clock, good(), 60)
    assert changes == []
    assert m.current().since == since


@pytest.mark.parametrize(
    "reason",
    [
        StatusReason.UNREACHABLE, StatusReason.AUTH_FAILED, StatusReason.ONVIF_ERROR, StatusReason.RTSP_REFUSED,
        StatusReason.RTSP_TIMEOUT, StatusReason.DECODER_ERROR, StatusReason.STREAM_STALLED,
    ],
)
def test_status_connection_failure_offline_on_first_report(clock: FakeClock, reason: StatusReason) -> None:
    """Every typed connection failure turns an online camera offline with that reason on its first report."""
    m = machine(clock)
    m.observe(good())
    clock.advance(2)
    s = m.observe(failing(reason))
    assert s is not None and s.state is CameraState.OFFLINE and s.reason is reason
    assert s.message.startswith(REASON_MESSAGES[reason]) and "detail" in s.message


def test_status_stall_shows_within_15s(clock: FakeClock) -> None:
    """A stream that stops delivering frames (reports keep coming, age grows) is offline/stream_stalled < 15 s."""
    m = machine(clock)
    run(m, clock, good(), 10)
    changes = []
    for t in range(0, 20):
        report = good(last_frame_age_s=float(t) + 0.1, fps_in=0.0 if t > 1 else 10.0)
        if t % 2 == 0:
            s = m.observe(report)
            if s is not None:
                changes.append((t, s))
        clock.advance(1)
        s = m.tick()
        if s is not None:
            changes.append((t + 1, s))
    offline = [(t, s) for t, s in changes if s.state is CameraState.OFFLINE]
    assert offline, changes
    t, s = offline[0]
    assert s.reason is StatusReason.STREAM_STALLED and t < 15


def test_status_silent_worker_goes_offline(clock: FakeClock) -> None:
    """When the worker stops reporting, ticks alone take the camera offline within 15 s."""
    m = machine(clock)
    m.observe(good())
    for t in range(1, 16):
        clock.advance(1)
        s = m.tick()
        if s is not None:
            assert s.state is CameraState.OFFLINE and s.reason is StatusReason.STREAM_STALLED
            assert t <= 15
            return
    pytest.fail("silent worker never went offline")


def test_status_recovery_online_within_10s(clock: FakeClock) -> None:
    """After an outage, good reports publish online within 10 s, and only once."""
    m = machine(clock)
    m.observe(good())
    run(m, clock, failing(StatusReason.RTSP_REFUSED), 30)
    changes = run(m, clock, good(), 20)
    assert len(changes) == 1
    t, s = changes[0]
    assert s.state is CameraState.ONLINE and t <= 10


def test_status_flapping_is_damped(clock: FakeClock) -> None:
    """A camera dropping every few seconds publishes far fewer changes than it flips, and stays offline."""
    m = machine(clock)
    m.observe(good())
    changes = []
    for _ in range(30):  # 30 cycles: 2 s broken, 4 s fine
        changes += run(m, clock, failing(StatusReason.RTSP_TIMEOUT), 2)
        changes += run(m, clock, good(), 4)
    assert len(changes) <= 8, [(t, s.state) for t, s in changes]
    assert m.current().state is CameraState.OFFLINE
    assert m.flapping()


def test_status_alternating_reasons_do_not_flap(clock: FakeClock) -> None:
    """Retries that alternate between two offline reasons keep the first reason published."""
    m = machine(clock)
    m.observe(good())
    clock.advance(1)
    assert m.observe(failing(StatusReason.UNREACHABLE)) is not None
    for i in range(20):
        clock.advance(2)
        reason = StatusReason.RTSP_TIMEOUT if i % 2 == 0 else StatusReason.UNREACHABLE
        assert m.observe(failing(reason)) is None
    assert m.current().reason is StatusReason.UNREACHABLE


def test_status_persistent_reason_change_is_published(clock: FakeClock) -> None:
    """A lasting change of reason while offline (unreachable → password rejected) is published after a dwell."""
    m = machine(clock)
    m.observe(good())
    m.observe(failing(StatusReason.UNREACHABLE))
    changes = run(m, clock, failing(StatusReason.AUTH_FAILED), 10)
    assert [s.reason for _, s in changes] == [StatusReason.AUTH_FAILED]


def test_status_frozen_degraded_then_offline(clock: FakeClock) -> None:
    """A frozen image is degraded/frozen_image at once-ish and offline/frozen_image within 15 s."""
    m = machine(clock)
    m.observe(good())
    changes = run(m, clock, good(frozen=True), 20)
    states = [(t, s.state, s.reason) for t, s in changes]
    assert states[0][1:] == (CameraState.DEGRADED, StatusReason.FROZEN_IMAGE)
    assert states[-1][1:] == (CameraState.OFFLINE, StatusReason.FROZEN_IMAGE) and states[-1][0] <= 15


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"mean_luma": 3.0, "luma_std": 1.0}, StatusReason.BLACK_IMAGE),
        ({"mean_luma": 128.0, "luma_std": 1.5}, StatusReason.UNIFORM_IMAGE),
        ({"fps_in": 0.4}, StatusReason.LOW_FPS),
    ],
)
def test_status_degraded_conditions(clock: FakeClock, overrides: dict, reason: StatusReason) -> None:
    """Black, uniform and low-fps images are degraded with their reason after the degrade dwell."""
    m = machine(clock)
    m.observe(good())
    run(m, clock, good(), 14)  # connected long enough for the fps to be judged
    changes = run(m, clock, good(**overrides), 10)
    assert [(s.state, s.reason) for _, s in changes] == [(CameraState.DEGRADED, reason)]
    assert changes[0][0] >= StatusThresholds().degrade_dwell_s


def test_status_short_dark_moment_not_published(clock: FakeClock) -> None:
    """A dark image lasting less than the degrade dwell (a truck in front of the lens) publishes nothing."""
    m = machine(clock)
    m.observe(good())
    changes = run(m, clock, good(mean_luma=2.0, luma_std=0.5), 2) + run(m, clock, good(), 10)
    assert changes == []


def test_status_stuck_ir_only_in_daytime(clock: FakeClock) -> None:
    """Greyscale frames are degraded/stuck_ir when the daytime callable says it is day, fine at night."""
    day = machine(clock, daytime=lambda ts: True)
    day.observe(good())
    assert [s.reason for _, s in run(day, clock, good(greyscale=True), 10)] == [StatusReason.STUCK_IR]
    night = machine(clock, daytime=lambda ts: False)
    night.observe(good())
    assert run(night, clock, good(greyscale=True), 10) == []


def test_status_frequent_reconnects_degraded(clock: FakeClock) -> None:
    """Three drops of a working stream within ten minutes are degraded/frequent_reconnects."""
    m = machine(clock)
    reconnects = 0
    m.observe(good(reconnects=reconnects))
    for _ in range(3):
        run(m, clock, good(reconnects=reconnects), 60)
        reconnects += 1
    changes = run(m, clock, good(reconnects=reconnects), 10)
    assert [(s.state, s.reason) for _, s in changes] == [(CameraState.DEGRADED, StatusReason.FREQUENT_RECONNECTS)]


def test_status_failed_retries_are_not_drops(clock: FakeClock) -> None:
    """Many failed reconnect attempts during one outage do not make the camera degraded after it recovers."""
    m = machine(clock)
    m.observe(good())
    for i in range(1, 10):
        m.observe(failing(StatusReason.UNREACHABLE, reconnects=i))
        clock.advance(2)
    changes = run(m, clock, good(reconnects=10), 10)
    assert [s.state for _, s in changes] == [CameraState.ONLINE]


def test_status_disable_and_enable(clock: FakeClock) -> None:
    """Disabling is offline/disabled at once whatever the reports say; enabling starts again."""
    m = machine(clock)
    m.observe(good())
    s = m.set_enabled(False)
    assert s is not None and (s.state, s.reason) == (CameraState.OFFLINE, StatusReason.DISABLED)
    assert run(m, clock, good(), 10) == []
    s = m.set_enabled(True)
    assert s is not None and s.reason is StatusReason.STARTING
    assert m.observe(good()).state is CameraState.ONLINE  # type: ignore[union-attr]


def test_status_rejects_other_cameras_report(clock: FakeClock) -> None:
    """A report for another camera is a programming error and says so."""
    with pytest.raises(ValueError, match="cam2"):
        machine(clock).observe(good("cam2"))


def test_status_thresholds_reject_negative() -> None:
    """Negative thresholds are refused at construction."""
    with pytest.raises(ValueError, match="recover_dwell_s"):
        StatusThresholds(recover_dwell_s=-1)


def test_status_board_tracks_and_syncs(clock: FakeClock) -> None:
    """The board announces new cameras, routes reports, and forgets cameras removed from the config."""
    board = StatusBoard(mono=clock.mono, wall=clock.wall)
    assert board.add("a") is not None and board.add("a") is None
    assert board.observe(good("b")).state is CameraState.ONLINE  # type: ignore[union-attr]
    assert [s.camera_id for s in board.tick()] == []
    assert board.sync(["b", "c"]) == ["a"]
    assert board.camera_ids() == ["b", "c"]
    assert [s.camera_id for s in board.tick()] == ["c"]
    assert set(board.snapshot()) == {"b", "c"} and set(board.reports()) == {"b"}
    assert board.set_enabled("b", False).reason is StatusReason.DISABLED  # type: ignore[union-attr]
    assert board.enabled("b") is False and board.enabled("zz") is None


def test_status_picture_not_changing_is_frozen_not_stalled(clock: FakeClock) -> None:
    """Packets arriving while the last new picture ages (5 s reports, pipeline flag at 10 s): frozen_image < 15 s."""
    m = machine(clock)
    m.observe(good())
    changes = []
    for t in range(0, 20):
        if t % 5 == 0 or t == 10:  # periodic reports, plus the pipeline's on-change report when it flags frozen
            s = m.observe(good(last_frame_age_s=float(t), frozen=t >= 10))
            if s is not None:
                changes.append((t, s))
        clock.advance(1)
        s = m.tick()
        if s is not None:
            changes.append((t + 1, s))
    reasons = [(t, s.state, s.reason) for t, s in changes]
    assert all(r is StatusReason.FROZEN_IMAGE for _, _, r in reasons), reasons
    assert reasons[-1][1] is CameraState.OFFLINE and reasons[-1][0] <= 15


def test_status_keyframe_mode_sparse_reports_stay_online(clock: FakeClock) -> None:
    """Keyframe decoding (new picture every 4 s) with 5 s reports never looks stalled or frozen."""
    m = machine(clock)
    m.observe(good())
    changes = []
    for t in range(0, 120):
        if t % 5 == 0:
            s = m.observe(good(last_frame_age_s=float(t % 4) + 0.9, fps_in=12.0, fps_analysed=0.25))
            if s is not None:
                changes.append(s)
        clock.advance(1)
        if (s := m.tick()) is not None:
            changes.append(s)
    assert changes == []


def test_status_low_fps_right_after_reconnect_ignored(clock: FakeClock) -> None:
    """The first fps after a reconnect (a rate straddling the outage) does not make the camera degraded."""
    m = machine(clock)
    m.observe(good())
    run(m, clock, failing(StatusReason.RTSP_REFUSED), 6)
    changes = run(m, clock, good(fps_in=0.3), 4) + run(m, clock, good(), 10)
    assert [(s.state, s.reason) for _, s in changes] == [(CameraState.ONLINE, StatusReason.NONE)]


def test_status_reboot_story_back_online_within_10s(clock: FakeClock) -> None:
    """One outage with several reasons (stalled, then refused while booting) is not flapping: online < 10 s after."""
    m = machine(clock)
    m.observe(good())
    run(m, clock, good(), 10)
    run(m, clock, failing(StatusReason.STREAM_STALLED), 6)
    run(m, clock, failing(StatusReason.RTSP_REFUSED), 10)
    changes = run(m, clock, good(fps_in=0.3), 2) + run(m, clock, good(), 10)
    assert not m.flapping()
    assert changes and changes[-1][1].state is CameraState.ONLINE and changes[-1][0] <= 10


def test_status_daytime_between_vietnam_hours() -> None:
    """The default daytime window is 07:00-17:00 at UTC+7; bad hours are refused."""
    from agent.health.status import daytime_between

    is_day = daytime_between()
    midnight_utc = 1_800_000_000 - (1_800_000_000 % 86400)  # 00:00 UTC = 07:00 in Vietnam
    assert is_day(midnight_utc) and is_day(midnight_utc + 9.9 * 3600)
    assert not is_day(midnight_utc + 10 * 3600) and not is_day(midnight_utc - 60)
    with pytest.raises(ValueError, match="daytime hours"):
        daytime_between(18, 6)


def test_status_frozen_camera_reconnect_does_not_flap(clock: FakeClock) -> None:
    """The pipeline reconnecting to a still-frozen camera (one fresh picture, then frozen again) stays offline."""
    m = machine(clock)
    m.observe(good())
    run(m, clock, good(frozen=True, reconnects=0), 12)
    assert m.current().state is CameraState.OFFLINE
    changes = []
    for cycle in range(1, 4):  # each cycle: reconnect, fresh session picture ages, flagged frozen again
        for t in range(0, 20):
            age = float(t) + 0.1
            changes += [s for s in [m.observe(good(last_frame_age_s=age, frozen=age >= 10, reconnects=cycle))] if s]
            clock.advance(1)
            changes += [s for s in [m.tick()] if s]
    assert all(s.state is CameraState.OFFLINE for s in changes), [(s.state, s.reason) for s in changes]


def test_status_frozen_clears_in_session_recovers_fast(clock: FakeClock) -> None:
    """A freeze that clears without a reconnect is back online within the normal 10 s budget."""
    m = machine(clock)
    m.observe(good())
    run(m, clock, good(frozen=True), 12)
    changes = run(m, clock, good(), 12)
    assert changes and changes[-1][1].state is CameraState.ONLINE and changes[-1][0] <= 10
