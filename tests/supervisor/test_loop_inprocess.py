"""The main loop in this process, over an empty pool: reload errors, the healthy-only watchdog, spawn failures."""

from __future__ import annotations

import errno
import os
import signal
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from agent.supervisor import EventKind, Notifier, Supervisor, SupervisorLoop, SupervisorSettings, WorkerState
from tests.supervisor.conftest import ENTRY
from tests.supervisor.dummy_workers import DummyJob


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    name = f"mt-loop-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.setblocking(False)
    yield sock, "@" + name
    sock.close()


def _received(sock: socket.socket) -> list[str]:
    out: list[str] = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


def test_loop_failed_reload_keeps_running() -> None:
    """A reload callback that raises is logged; the loop keeps ticking until asked to stop."""
    ticks: list[int] = []
    reloads: list[int] = []

    def on_reload() -> None:
        reloads.append(1)
        raise ValueError("agent.yaml line 3: bad indentation")

    def on_tick() -> None:
        ticks.append(1)
        if len(ticks) == 1:
            os.kill(os.getpid(), signal.SIGHUP)
        if len(ticks) == 5:
            loop.request_stop()

    supervisor = Supervisor(SupervisorSettings(worker_entry=ENTRY), [])
    loop = SupervisorLoop(supervisor, notifier=Notifier(None), on_reload=on_reload, on_tick=on_tick, tick_s=0.01)
    assert loop.run() == 0
    assert reloads == [1] and len(ticks) == 5


def test_loop_watchdog_only_while_healthy(notify_socket) -> None:  # type: ignore[no-untyped-def]
    """No WATCHDOG=1 goes out while the health check fails; pings start once it passes."""
    sock, address = notify_socket
    ticks: list[int] = []
    early: list[str] = []
    late: list[str] = []

    def on_tick() -> None:
        ticks.append(1)
        (early if len(ticks) <= 10 else late).extend(_received(sock))  # read as systemd would, so none is dropped
        if len(ticks) == 30:
            loop.request_stop()

    supervisor = Supervisor(SupervisorSettings(worker_entry=ENTRY), [])
    notifier = Notifier(address, watchdog_usec=20_000)  # a ping due every 10 ms
    loop = SupervisorLoop(supervisor, notifier=notifier, healthy=lambda: len(ticks) >= 10, on_tick=on_tick,
                          tick_s=0.01)
    loop.run()
    late.extend(_received(sock))
    assert early and early[0].startswith("READY=1") and "WATCHDOG=1" not in early
    assert "WATCHDOG=1" in late and late[-1].startswith("STOPPING=1")


def test_pool_spawn_failure_counts_against_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the OS refuses a new process, the worker backs off and, past its budget, is marked FAILED."""
    events: list[Any] = []
    supervisor = Supervisor(SupervisorSettings(worker_entry=ENTRY, workers=1, restart_limit=0), [DummyJob("a")],
                            on_event=events.append)

    class RefusedProcess:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def start(self) -> None:
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(supervisor._ctx, "Process", RefusedProcess)
    supervisor.start()
    assert [e.kind for e in events] == [EventKind.EXITED, EventKind.FAILED]
    assert "could not start" in events[0].message
    assert supervisor.snapshot().cameras == {"a": WorkerState.FAILED}
