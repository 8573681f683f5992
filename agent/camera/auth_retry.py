"""How soon a camera loop may log in again after the camera rejected its credentials.

Cheap cameras (Hikvision, Dahua and their OEM clones) lock the account after 5-7 failed logins, often for 30
minutes, and a locked camera refuses even the right password. Every reconnect of an RTSP or snapshot source and
every PullPoint subscription logs in again, so the normal reconnect backoff alone (1 s upwards) would make dozens
of bad logins in ten minutes. The discovery issue allows at most 3 attempts per camera per 10 minutes; discovery
keeps that budget itself (agent.discovery.policy.AuthBudget), the camera worker's loops keep it here.

The first failures retry on the normal backoff, so a camera that refused one login during a reboot is back at once;
once `failures` of them fall in the window, the next attempt waits until the oldest leaves it. A success clears
the count (camera firmwares reset their failure counter on a good login). A changed password reaches the camera
through a configuration reload, which restarts the camera's worker and so starts a fresh policy.

Pure (the caller passes `time.monotonic()`; nothing here outlives the process) and thread-safe, so one instance
may serve both a camera's pipeline thread and its PullPoint loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.video.backoff import Backoff

AUTH_FAILURES = 3  # failed logins per window: lockouts start at 5-7; the same budget discovery keeps
AUTH_WINDOW_S = 600.0  # s; the 10 minutes


class AuthRetryPolicy:
    """At most `failures` rejected logins per `window_s`: `wait_s(now)` is how long the next login must wait."""

    def __init__(self, *, failures: int = AUTH_FAILURES, window_s: float = AUTH_WINDOW_S) -> None:
        if failures < 1:
            raise ValueError(f"failures must be >= 1, got {failures}")
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self.max_failures = failures
        self.window_s = window_s
        self._lock = threading.Lock()
        self._times: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self._times and now - self._times[0] >= self.window_s:
            self._times.popleft()

    def failed(self, now: float) -> None:
        """The camera rejected a login at `now`."""
        with self._lock:
            self._prune(now)
            self._times.append(now)

    def succeeded(self) -> None:
        """A login worked: the camera has forgotten its failures, and so do we."""
        with self._lock:
            self._times.clear()

    def failures(self, now: float) -> int:
        """Rejected logins within the window ending at `now`."""
        with self._lock:
            self._prune(now)
            return len(self._times)

    def wait_s(self, now: float) -> float:
        """0 while another login fits the budget; else the seconds until enough failures leave the window."""
        with self._lock:
            self._prune(now)
            if len(self._times) < self.max_failures:
                return 0.0
            # Usually the oldest; with more failures than allowed (two loops sharing the policy raced), the one
            # whose leaving brings the count below the limit.
            return max(0.0, self._times[-self.max_failures] + self.window_s - now)

    def delay(self, now: float, backoff_s: float) -> float:
        """The reconnect delay: the normal backoff, or longer while the login budget is spent."""
        return max(backoff_s, self.wait_s(now))

    def retry_delay(self, backoff: Backoff, log: logging.Logger | logging.LoggerAdapter[Any], what: str,
                    advice: str = "") -> float:
        """A failed loop's next reconnect delay (recording the failure in `backoff`), saying in the log why it is
        long when the login budget, not the backoff, holds it back."""
        now = time.monotonic()
        delay = backoff.failure(now)
        held = self.wait_s(now)
        if held > delay:
            log.warning("%scredentials rejected %d times in the last %.0f s; next login in %.0f s, so that the camera "
                        "does not lock the account%s", what, self.failures(now), self.window_s, held, advice)
        return max(delay, held)
