"""The simulator's processes: started, listed, and stopped every time, including when its parent is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from agent.simulator.cluster import Cluster
from tests.simulator.conftest import scenario

ROOT = Path(__file__).resolve().parents[2]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.rtsp
def test_lifecycle_close_stops_rtsp_host(make_cluster: Callable[..., Cluster]) -> None:
    """Closing a cluster ends the RTSP host process it started."""
    cluster = make_cluster(scenario(1))
    pids = cluster.pids()
    assert pids and all(not gone(p) for p in pids)
    cluster.close()
    assert all(wait_gone(p) for p in pids)


@pytest.mark.rtsp
def test_lifecycle_killed_parent_takes_rtsp_host_down(make_cluster: Callable[..., Cluster]) -> None:
    """SIGKILL of `matthan-agent simulate` still ends its RTSP host: nothing outlives the simulator."""
    make_cluster  # noqa: B018  # the fixture skips this test where the RTSP server is unavailable
    proc = subprocess.Popen([sys.executable, "-m", "agent", "simulate", "--cameras", "1", "--loopback", "--json"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]  # --json: one line once every camera is up
        assert line, "simulate exited before printing its cameras"
        cameras = json.loads(line)
        assert cameras[0]["name"] == "cam01"
        children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        assert children
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert all(wait_gone(pid) for pid in children)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_lifecycle_cli_refuses_bad_scenario(tmp_path: Path) -> None:
    """`simulate --scenario` with an unknown fault exits 78 and names the problem; nothing is started."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras: [{name: a}]\nfaults: [{camera: a, fault: explode}]\n")
    out = subprocess.run([sys.executable, "-m", "agent", "simulate", "--scenario", str(bad)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 78
    assert "unknown fault 'explode'" in out.stderr and str(bad) in out.stderr
