"""Reconnect delays: capped, jittered, never giving up, and quick to recover from a short outage.

The delay grows with the length of the outage (a quarter of it, between 1 s and 60 s), which is exponential
growth by 1.25x per attempt: a camera that blinks for 20 s is retried every few seconds and back within ~5 s of
returning, while a camera that has been dark for an hour costs one attempt a minute. (The camera pipeline also
probes a dead camera's port with a bare TCP connect every 2 s and reconnects as soon as it answers: see
agent.video.probe.)
"""

from __future__ import annotations

import random
from collections.abc import Callable

MIN_DELAY_S = 1.0
MAX_DELAY_S = 60.0
OUTAGE_FRACTION = 0.25  # delay as a fraction of the outage so far
JITTER = 0.2  # +-20 %, so 40 cameras that lost one switch do not reconnect in lockstep


class Backoff:
    """Tracks one source's outage; `failure(now)` returns how long to wait before the next attempt."""

    def __init__(self, *, rand: Callable[[], float] = random.random) -> None:
        self._rand = rand
        self._since: float | None = None
        self.attempts = 0

    @property
    def failing_since(self) -> float | None:
        return self._since

    def failure(self, now: float) -> float:
        if self._since is None:
            self._since = now
        self.attempts += 1
        base = min(MAX_DELAY_S, max(MIN_DELAY_S, OUTAGE_FRACTION * (now - self._since)))
        return max(MIN_DELAY_S, min(MAX_DELAY_S, base * (1.0 - JITTER + 2 * JITTER * self._rand())))

    def success(self) -> None:
        self._since = None
        self.attempts = 0
