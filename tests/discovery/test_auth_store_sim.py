"""The persisted credential budget against a simulated camera (loopback mode): a restart, or a `discover --save` run
in another process, makes no new login attempt on a camera that rejected three; counted on the camera's wire."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.discovery.auth_store import AUTH_BUDGET_FILE
from agent.discovery.inventory import Inventory
from agent.discovery.results import FailureReason
from agent.discovery.service import discover_once
from agent.discovery.settings import Credential, DiscoverySettings
from tests.rig.sim import running_cluster

pytestmark = pytest.mark.rtsp
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with running_cluster({"cameras": [{"name": "lo-locked", "password": "the-right-one-3"}]}) as c:
        yield c


def _round(cluster: Any, state_dir: Path) -> Any:
    """One discovery round as the daemon runs it after a start: inventory (and so the budget) from the state dir."""
    info = cluster.info("lo-locked")
    settings = DiscoverySettings(multicast=False, probe_window_s=1.0, check_events=False,
                                 unicast_targets=(f"127.0.0.1:{info.wsd_port}",),
                                 credentials=tuple(Credential(info.username, f"guess-{n}") for n in range(4)))
    report = asyncio.run(discover_once(settings, inventory=Inventory.load(state_dir / "inventory.json")))
    assert len(report.rows) == 1
    return report.rows[0]


def test_auth_store_sim_restart_and_cli_make_no_new_attempt(cluster: Any, tmp_path: Path) -> None:
    """3 rejected logins on the wire; after a restart, and from `discover --state-dir --save`, none (only the
    unauthenticated clock request) while the window lasts."""
    cam = cluster.camera("lo-locked")
    info = cluster.info("lo-locked")
    before = cam.requests
    first = _round(cluster, tmp_path)
    assert first.reason is FailureReason.AUTH_FAILED and first.auth_attempts == 3
    assert cam.requests - before == 4  # 1 unauthenticated GetSystemDateAndTime + 3 GetDeviceInformation
    assert (tmp_path / AUTH_BUDGET_FILE).exists()

    before = cam.requests
    again = _round(cluster, tmp_path)  # a new process would build exactly this: nothing carried in memory
    assert again.reason is FailureReason.AUTH_FAILED and again.auth_attempts == 0 and "retry in" in again.detail
    assert cam.requests - before == 1

    before = cam.requests
    argv = [sys.executable, "-m", "agent", "discover", "--no-multicast", "--timeout", "1", "--no-events",
            "--target", f"127.0.0.1:{info.wsd_port}", "--user", info.username, "--state-dir", str(tmp_path), "--save"]
    env = {**os.environ, "MATTHAN_ONVIF_PASSWORD": "guess-from-the-cli"}
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert cam.requests - before == 1, proc.stdout + proc.stderr
    assert "guess-from-the-cli" not in proc.stdout + proc.stderr

    before = cam.requests  # read-only use (no --save) still honours, and feeds, the agent's budget
    proc = subprocess.run(argv[:-1], capture_output=True, text=True, cwd=REPO, env=env, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert cam.requests - before == 1, proc.stdout + proc.stderr
