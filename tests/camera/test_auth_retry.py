"""The login budget of the camera loops: at most 3 rejected logins per camera per window, as a pure policy."""

from __future__ import annotations

import threading

import pytest

from agent.camera.auth_retry import AUTH_FAILURES, AUTH_WINDOW_S, AuthRetryPolicy


def test_auth_retry_defaults_are_three_per_ten_minutes() -> None:
    """The defaults are the discovery issue's numbers."""
    policy = AuthRetryPolicy()
    assert (AUTH_FAILURES, AUTH_WINDOW_S) == (3, 600.0)
    assert (policy.max_failures, policy.window_s) == (3, 600.0)


def test_auth_retry_first_failures_keep_normal_backoff() -> None:
    """Two rejected logins leave the normal backoff alone: a camera that refused one login while booting is retried."""
    policy = AuthRetryPolicy()
    policy.failed(100.0)
    assert policy.wait_s(100.0) == 0.0 and policy.delay(100.0, 1.5) == 1.5
    policy.failed(101.5)
    assert policy.wait_s(101.5) == 0.0 and policy.delay(101.5, 1.0) == 1.0


def test_auth_retry_third_failure_waits_for_the_oldest_to_leave() -> None:
    """After the 3rd rejection in the window the next login waits until the 1st is 10 minutes old."""
    policy = AuthRetryPolicy()
    for t in (100.0, 101.0, 102.5):
        policy.failed(t)
    assert policy.failures(102.5) == 3
    assert policy.wait_s(102.5) == pytest.approx(597.5)
    assert policy.delay(102.5, 1.2) == pytest.approx(597.5)
    assert policy.delay(650.0, 60.0) == pytest.approx(60.0)  # the longer of the two wins
    assert policy.wait_s(700.0) == 0.0 and policy.failures(700.0) == 2  # the oldest has left the window


def test_auth_retry_never_more_than_three_in_any_window() -> None:
    """Following the policy for an hour of rejections, no 10-minute window holds more than 3 of them."""
    policy = AuthRetryPolicy()
    now, attempts = 0.0, []
    backoff = 1.0
    while now < 3600.0:
        attempts.append(now)
        policy.failed(now)
        backoff = min(60.0, backoff * 1.25)
        now += policy.delay(now, backoff)
    assert len(attempts) >= 3 * 6  # it keeps trying: 3 per window, 6 windows an hour
    assert all(later - first >= 600.0 for first, later in zip(attempts, attempts[3:], strict=False))


def test_auth_retry_success_clears_the_count() -> None:
    """A login that works clears the failures (the camera's own counter resets on success)."""
    policy = AuthRetryPolicy()
    for t in (0.0, 1.0, 2.0):
        policy.failed(t)
    assert policy.wait_s(3.0) > 0
    policy.succeeded()
    assert policy.wait_s(3.0) == 0.0 and policy.failures(3.0) == 0


def test_auth_retry_shared_overflow_waits_for_enough_to_leave() -> None:
    """Two loops sharing one policy that raced to 4 failures wait until only 2 remain in the window."""
    policy = AuthRetryPolicy(window_s=10.0)
    for t in (0.0, 1.0, 2.0, 2.1):
        policy.failed(t)
    assert policy.wait_s(3.0) == pytest.approx(8.0)  # until t=11, when 0 and 1 have left


def test_auth_retry_thread_safe_counting() -> None:
    """Failures recorded from several threads at once are all counted."""
    policy = AuthRetryPolicy(failures=10, window_s=1e9)
    threads = [threading.Thread(target=lambda: [policy.failed(1.0) for _ in range(500)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert policy.failures(2.0) == 2000


@pytest.mark.parametrize(("failures", "window_s"), [(0, 600.0), (3, 0.0), (3, -1.0)])
def test_auth_retry_rejects_bad_limits(failures: int, window_s: float) -> None:
    """A budget of no failures or an empty window is a programming error, refused at once."""
    with pytest.raises(ValueError):
        AuthRetryPolicy(failures=failures, window_s=window_s)
