"""Fixtures for the supervisor tests: a supervisor over dummy workers that is always stopped afterwards."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agent.supervisor import Supervisor, SupervisorEvent, SupervisorSettings

ENTRY = "tests.supervisor.dummy_workers:run_dummy"
# Spawning a child on a loaded 2-core CI box can take seconds; deadlines are generous, checks exit early.
DEADLINE_S = 30.0


class Harness:
    """A started supervisor plus everything it reported, and a way to drive it until something is true."""

    def __init__(self, supervisor: Supervisor, events: list[SupervisorEvent], reports: list[Any]) -> None:
        self.supervisor = supervisor
        self.events = events
        self.reports = reports

    def drive(self, until: Callable[[], bool], timeout_s: float = DEADLINE_S, what: str = "condition") -> None:
        """Tick the supervisor until `until()` holds; fail with `what` after the deadline."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.supervisor.tick()
            if until():
                return
            time.sleep(0.05)  # poll period of the tick loop, not a synchronisation guess
        pytest.fail(f"timed out after {timeout_s:.0f} s waiting for: {what}; events: {self.events}")

    def events_of(self, kind: str, slot: int | None = None) -> list[SupervisorEvent]:
        return [e for e in self.events if e.kind == kind and (slot is None or e.slot == slot)]

    def pids(self) -> dict[int, int | None]:
        return {w.slot: w.pid for w in self.supervisor.snapshot().workers}


@pytest.fixture
def make_pool() -> Iterator[Callable[..., Harness]]:
    """Build and start a supervisor over `jobs`; settings default to fast timeouts."""
    made: list[Supervisor] = []

    def factory(jobs: list[Any], **overrides: Any) -> Harness:
        # hang_timeout_s: long enough that a worker starved of CPU on a loaded CI box is not taken for hung.
        options: dict[str, Any] = dict(worker_entry=ENTRY, workers=2, hang_timeout_s=5.0, boot_timeout_s=DEADLINE_S,
                                       backoff_initial_s=0.05, backoff_max_s=0.2, stop_timeout_s=3.0)
        options.update(overrides)
        events: list[SupervisorEvent] = []
        reports: list[Any] = []
        supervisor = Supervisor(SupervisorSettings(**options), jobs, on_event=events.append,
                                on_report=reports.append)
        made.append(supervisor)
        supervisor.start()
        return Harness(supervisor, events, reports)

    yield factory
    for supervisor in made:
        supervisor.stop(3.0)
