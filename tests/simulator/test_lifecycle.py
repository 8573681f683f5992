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
from agent.simulator.netns import NAME_PREFIX, NETNS_DIR, netns_unavailable_reason
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


def our_namespaces(pid: int) -> set[str]:
    """Namespaces created by process `pid` (their names carry the creator's pid, see agent/simulator/netns.py)."""
    prefix = f"{NAME_PREFIX}{pid}-"
    return {n for n in os.listdir(NETNS_DIR) if n.startswith(prefix)} if os.path.isdir(NETNS_DIR) else set()


@pytest.mark.netns
@pytest.mark.rtsp
def test_lifecycle_sigterm_netns_removes_children_and_namespaces(make_cluster: Callable[..., Cluster]) -> None:
    """SIGTERM to `simulate --netns --json` ends its RTSP host and deletes both namespaces; it exits 0."""
    make_cluster  # noqa: B018  # the fixture skips this test where the RTSP server is unavailable
    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(reason)
    proc = subprocess.Popen([sys.executable, "-m", "agent", "simulate", "--cameras", "2", "--netns", "--json"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]  # --json: one line once every camera is up
        assert line, "simulate exited before printing its cameras"
        assert [c["name"] for c in json.loads(line)] == ["cam01", "cam02"]
        agent_ns = proc.stdout.readline().split()[2]  # type: ignore[union-attr]  # "agent namespace: NAME ..."
        created = our_namespaces(proc.pid)
        assert agent_ns in created and len(created) == 2, created
        children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        assert children, "the RTSP host should be a child of simulate"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, proc.stderr.read()  # type: ignore[union-attr]
        assert all(wait_gone(pid) for pid in children)
        assert our_namespaces(proc.pid) == set()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for name in our_namespaces(proc.pid):  # never leave a namespace behind, even when the test fails
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)


def test_lifecycle_cli_refuses_bad_scenario(tmp_path: Path) -> None:
    """`simulate --scenario` with an unknown fault exits 78 and names the problem; nothing is started."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras: [{name: a}]\nfaults: [{camera: a, fault: explode}]\n")
    out = subprocess.run([sys.executable, "-m", "agent", "simulate", "--scenario", str(bad)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 78
    assert "unknown fault 'explode'" in out.stderr and str(bad) in out.stderr
