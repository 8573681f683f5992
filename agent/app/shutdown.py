"""One deadline for the whole shutdown, shared by its stages in turn.

SIGTERM must be done within 10 s. Fixed shares per stage (workers 6 s, discovery 3 s, relay 2 s, client 2 s) add up
to 13 s; instead the deadline is taken once, when the stop begins, and every stage waits for what is left of it,
minus a small reserve for the stages after it, so that a stage that overruns cannot starve the explicit `offline`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

SHUTDOWN_BUDGET_S = 9.0  # the 10 s stop budget, less 1 s for closing the outbox and the interpreter's exit
RELAY_RESERVE_S = 0.5  # kept for the relay: one SQLite transaction records the last PUBACKs
CLIENT_RESERVE_S = 1.0  # kept for the client: `offline` takes milliseconds on a working link; 1 s covers a slow one


class StopBudget:
    """`start()` when the stop begins (later calls keep the first deadline); `left(reserve_s)` for each stage."""

    def __init__(self, total_s: float = SHUTDOWN_BUDGET_S, *, clock: Callable[[], float] = time.monotonic) -> None:
        if total_s <= 0:
            raise ValueError(f"the shutdown budget must be positive, got {total_s}")
        self.total_s = total_s
        self._clock = clock
        self._deadline: float | None = None

    @property
    def started(self) -> bool:
        return self._deadline is not None

    def start(self) -> None:
        if self._deadline is None:
            self._deadline = self._clock() + self.total_s

    def left(self, reserve_s: float = 0.0) -> float:
        """Seconds this stage may wait: what is left of the budget less `reserve_s` for later stages (never
        negative). Starts the budget if nothing did."""
        self.start()
        assert self._deadline is not None
        return max(0.0, self._deadline - self._clock() - reserve_s)
