"""Pure parts of the video package: backoff, URI masking, error mapping, the last-new-frame watchdog."""

from __future__ import annotations

import errno
import itertools

import av
import numpy as np
import pytest

from agent.models import StatusReason
from agent.video import Backoff, FrameWatchdog, WatchdogSettings, mask_uri
from agent.video.backoff import MAX_DELAY_S, MIN_DELAY_S
from agent.video.errors import classify


def test_backoff_starts_at_one_second_and_caps_at_sixty() -> None:
    """Delays start near 1 s, grow with the outage, never exceed 60 s, and reset on success."""
    backoff, now, delays = Backoff(rand=lambda: 0.5), 0.0, []
    for _ in range(60):
        d = backoff.failure(now)
        delays.append(d)
        now += d
    assert delays[0] == MIN_DELAY_S
    assert max(delays) == MAX_DELAY_S
    assert all(b >= a for a, b in itertools.pairwise(delays))
    backoff.success()
    assert backoff.failure(now) == MIN_DELAY_S


def test_backoff_short_outage_retries_quickly() -> None:
    """After a 20 s outage the next attempt comes within ~6 s, so a returning camera is back quickly."""
    backoff = Backoff(rand=lambda: 1.0)
    backoff.failure(0.0)
    assert backoff.failure(20.0) <= 6.0 + 1e-9


def test_backoff_jitter_spreads_delays() -> None:
    """Jitter makes two cameras' delays differ by up to +-20 %."""
    low, high = Backoff(rand=lambda: 0.0), Backoff(rand=lambda: 1.0)
    low.failure(0.0)
    high.failure(0.0)
    assert low.failure(100.0) == pytest.approx(20.0) and high.failure(100.0) == pytest.approx(30.0)


def test_mask_uri_hides_password() -> None:
    """Passwords never survive into messages; URIs without one are unchanged."""
    assert mask_uri("rtsp://admin:hunter2@10.0.0.5:554/s1") == "rtsp://admin:***@10.0.0.5:554/s1"
    assert mask_uri("rtsp://10.0.0.5/s1") == "rtsp://10.0.0.5/s1"


def test_classify_maps_errors_to_reasons() -> None:
    """FFmpeg/OS errors become typed errors with the right StatusReason and no password in the message."""
    uri = "rtsp://admin:hunter2@10.0.0.5/s1"
    cases = [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), True, 0.0, StatusReason.RTSP_REFUSED),
        (OSError(errno.EHOSTUNREACH, "no route"), True, 0.0, StatusReason.UNREACHABLE),
        (av.error.InvalidDataError(errno.EINVAL, "bad", uri), True, 10.0, StatusReason.RTSP_TIMEOUT),
        (av.error.InvalidDataError(errno.EINVAL, "bad", uri), False, 5.0, StatusReason.STREAM_STALLED),
        (av.error.InvalidDataError(errno.EINVAL, "bad", uri), True, 0.1, StatusReason.DECODER_ERROR),
    ]
    for exc, opening, elapsed, reason in cases:
        err = classify(exc, uri, opening=opening, elapsed_s=elapsed, timeout_s=10.0 if opening else 5.0)
        assert err.reason == reason, (exc, err)
        assert "hunter2" not in str(err)


def _frame(value: int, seed: int | None = None) -> np.ndarray:
    y = np.full((360, 640), value, np.uint8)
    if seed is not None:
        y = (y + np.random.default_rng(seed).integers(0, 8, y.shape)).astype(np.uint8)
    return y


def test_watchdog_detects_frozen_picture() -> None:
    """Identical pictures for frozen_after_s are frozen; a changing noisy picture is not; recovery clears it."""
    wd = FrameWatchdog(WatchdogSettings(frozen_after_s=10.0))
    frozen = _frame(100, seed=1)
    for i in range(60):
        wd.frame(frozen, i * 0.2)
    assert wd.frozen(11.8)
    assert wd.last_new_frame_age(11.8) == 11.8
    assert wd.frame(_frame(100, seed=2), 12.0)
    assert not wd.frozen(12.0)
    live = FrameWatchdog(WatchdogSettings(frozen_after_s=10.0))
    for i in range(60):
        live.frame(_frame(100, seed=i), i * 0.2)
    assert not live.frozen(11.8)


def test_watchdog_stall_counts_from_connection() -> None:
    """No frame for stall_after_s after connecting (or after the last frame) is a stall."""
    wd = FrameWatchdog(WatchdogSettings(stall_after_s=10.0))
    assert not wd.stalled(5.0, since=0.0)
    assert wd.stalled(10.5, since=0.0)
    wd.frame(_frame(1), 10.0)
    assert not wd.stalled(15.0, since=0.0)
    assert wd.stalled(20.0, since=0.0)
