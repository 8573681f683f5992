"""The supervisor as a process: READY/STATUS/STOPPING to systemd, SIGTERM, SIGHUP and SIGKILL from outside."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
STOP_BUDGET_S = 10.0  # the promise for SIGTERM/SIGINT


class Agent:
    """`python -m tests.supervisor.run_pool` with NOTIFY_SOCKET pointing at a socket this test reads."""

    def __init__(self, tmp_path: Path, cameras: list[list[str]], workers: int = 2) -> None:
        self.jobs_file = tmp_path / "jobs.json"
        self.jobs_file.write_text(json.dumps(cameras))
        self.notify_name = f"mt-test-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.notify_name)
        self.messages: list[str] = []
        env = {**os.environ, "NOTIFY_SOCKET": "@" + self.notify_name, "PYTHONPATH": str(REPO)}
        env.pop("WATCHDOG_USEC", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.supervisor.run_pool", str(self.jobs_file),
                                      str(workers)], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)

    def expect(self, predicate, timeout_s: float = 30.0, what: str = "") -> str:  # type: ignore[no-untyped-def]
        """Read notifications until one satisfies `predicate`; fail after the deadline."""
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                msg = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            self.messages.append(msg)
            if predicate(msg):
                return msg
        pytest.fail(f"no notification {what!r} within {timeout_s} s; got {self.messages}")

    def descendants(self) -> list[psutil.Process]:
        """Every process below the supervisor (workers, and multiprocessing's resource tracker)."""
        return psutil.Process(self.proc.pid).children(recursive=True)

    def workers(self) -> set[int]:
        return {p.pid for p in self.descendants() if "spawn_main" in " ".join(p.cmdline())}

    def close(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        _, err = self.proc.communicate(timeout=30)
        self.sock.close()
        return err


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    made: list[Agent] = []

    def factory(cameras: list[list[str]], workers: int = 2) -> Agent:
        made.append(Agent(tmp_path, cameras, workers))
        return made[-1]

    yield factory  # type: ignore[misc]
    for a in made:
        a.close()


def _gone(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Those of `procs` still running after `timeout_s` (a zombie has exited: only its reaper is late)."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = [p for p in procs if _running(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        psutil.wait_procs(alive, timeout=0.1)


def _running(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


FOUR = [["a", "steady"], ["b", "steady"], ["c", "steady"], ["d", "steady"]]


@pytest.mark.parametrize(("signum", "cameras"), [
    (signal.SIGTERM, FOUR),
    (signal.SIGINT, FOUR),
    (signal.SIGTERM, [*FOUR[:3], ["deaf", "hang"]]),  # a worker stuck in "C code" that ignores its stop event
], ids=["sigterm", "sigint", "sigterm-with-deaf-worker"])
def test_loop_signal_stops_everything_within_budget(agent, signum: int, cameras: list[list[str]]) -> None:  # type: ignore[no-untyped-def]
    """READY=1 after start; SIGTERM/SIGINT end the supervisor and every worker within 10 s, with STOPPING=1 sent."""
    a = agent(cameras)
    a.expect(lambda m: m.startswith("READY=1"), what="READY=1")
    a.expect(lambda m: "4/4 cameras running" in m, what="all cameras running")
    children = a.descendants()
    assert len(a.workers()) == 2
    t0 = time.monotonic()
    a.proc.send_signal(signum)
    rc = a.proc.wait(timeout=STOP_BUDGET_S)
    elapsed = time.monotonic() - t0
    assert rc == 0 and elapsed < STOP_BUDGET_S
    assert not _gone(children, 1.0), "a worker outlived its supervisor"
    a.expect(lambda m: m.startswith("STOPPING=1"), timeout_s=1.0, what="STOPPING=1")


def test_loop_sighup_adds_camera_without_touching_other_worker(agent) -> None:  # type: ignore[no-untyped-def]
    """SIGHUP re-reads the jobs: the new camera joins one worker; the other worker keeps its process."""
    a = agent(FOUR)
    a.expect(lambda m: "4/4 cameras running" in m, what="all cameras running")
    before = a.workers()
    assert len(before) == 2
    a.jobs_file.write_text(json.dumps([*FOUR, ["e", "steady"]]))
    a.proc.send_signal(signal.SIGHUP)
    a.expect(lambda m: m.startswith("RELOADING=1"), what="RELOADING=1")
    a.expect(lambda m: "5/5 cameras running in 2 workers" in m, what="five cameras running")
    after = a.workers()
    assert len(after) == 2 and len(before & after) == 1


def test_loop_sigkill_of_supervisor_stops_workers(agent) -> None:  # type: ignore[no-untyped-def]
    """If the supervisor is SIGKILLed, its workers see the control pipe close and exit on their own."""
    a = agent(FOUR)
    a.expect(lambda m: "4/4 cameras running" in m, what="all cameras running")
    children = a.descendants()
    a.proc.kill()
    a.proc.wait(timeout=5)
    assert not _gone(children, 10.0), "orphaned workers kept running"
