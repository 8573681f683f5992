"""One worker slot of the pool (private to the supervisor), and exit codes in words."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from agent.supervisor.channels import Heartbeat, ReportReader
from agent.supervisor.policy import RestartBudget
from agent.supervisor.state import WorkerState


def describe_exit(code: int | None) -> str:
    """A process exit code in words for logs and events: "killed by SIGSEGV", "exit code 78"."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass(eq=False)
class WorkerSlot:
    """The supervisor's record of one worker: its cameras, its process and channels, and its restart history.

    A slot outlives the processes that fill it: a respawn reuses the slot (and its budget) with a new process,
    because a process object cannot be started twice.
    """

    slot: int
    jobs: tuple[Any, ...]
    budget: RestartBudget
    state: WorkerState = WorkerState.STOPPED
    process: BaseProcess | None = None
    control: Connection | None = None  # our write end; closing it is the stop request
    reader: ReportReader | None = None
    heartbeat: Heartbeat | None = None
    started_at: float = 0.0
    counts: tuple[int, ...] = ()
    moved_at: list[float] = field(default_factory=list)
    failures: int = 0  # consecutive unexpected exits, for the backoff
    respawn_at: float | None = None
    stop_deadline: float = 0.0
    intent: str = "run"  # "run" | "restart" (with next_jobs) | "retire" | "shutdown"
    next_jobs: tuple[Any, ...] = ()
    last_exit: int | None = None

    @property
    def camera_ids(self) -> tuple[str, ...]:
        return tuple(j.camera_id for j in self.jobs)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None
