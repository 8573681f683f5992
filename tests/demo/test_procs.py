"""Child processes of the demo never outlive it: stop is TERM, a bounded wait, KILL, then the whole group."""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import psutil
import pytest

from agent.demo import procs
from agent.demo.broker import LocalBroker


def _gone(pids: list[int], deadline_s: float = 5.0) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return True
        time.sleep(0.05)  # polling process exit with a deadline
    return False


def _children(pid: int, count: int, deadline_s: float = 5.0) -> list[int]:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        kids = [c.pid for c in psutil.Process(pid).children(recursive=True)]
        if len(kids) >= count:
            return kids
        time.sleep(0.05)  # polling for the shell to start its children, with a deadline
    raise TimeoutError(f"pid {pid} did not start {count} children")


def test_procs_stop_kills_what_the_child_left_in_its_group(tmp_path: Path) -> None:
    """A child that dies on SIGTERM but leaves a background grandchild: the grandchild is killed too."""
    proc = procs.spawn(["sh", "-c", "sleep 60 & sleep 60"], log_path=tmp_path / "out.log")
    kids = _children(proc.pid, 2)
    assert procs.stop(proc, name="sh", grace_s=5.0) == -15
    assert _gone([proc.pid, *kids])


def test_procs_stop_kills_a_child_deaf_to_sigterm(tmp_path: Path) -> None:
    """A child that ignores SIGTERM is killed once the grace period is over."""
    proc = procs.spawn(["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"],
                       log_path=tmp_path / "out.log")
    deadline = time.monotonic() + 5.0
    while "ready" not in (tmp_path / "out.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the child's output with a deadline
    started = time.monotonic()
    assert procs.stop(proc, name="deaf", grace_s=0.5) == -9
    assert time.monotonic() - started < 5.0


@pytest.mark.broker
def test_broker_local_starts_on_a_free_port_and_stops(tmp_path: Path) -> None:
    """The demo's Mosquitto listens on 127.0.0.1 (never the machine's 1883) and is gone after stop()."""
    if not shutil.which("mosquitto") and not Path("/usr/sbin/mosquitto").exists():
        pytest.skip("mosquitto not installed (apt-get install mosquitto)")
    broker = LocalBroker(tmp_path / "broker")
    try:
        port = broker.start()
        assert port != 1883
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        pid = broker.pid
        assert pid is not None
    finally:
        broker.stop()
    assert _gone([pid])
    assert broker.proc is not None and broker.proc.returncode is not None


def test_procs_spawn_uses_its_own_session(tmp_path: Path) -> None:
    """Children lead their own session, so a terminal's Ctrl-C reaches only the demo, which stops them in order."""
    proc = procs.spawn(["sleep", "30"], log_path=tmp_path / "out.log")
    try:
        assert os.getsid(proc.pid) == proc.pid != os.getsid(0)
    finally:
        procs.stop(proc, name="sleep", grace_s=2.0)
