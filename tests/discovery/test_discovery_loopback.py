"""Discovery against the simulator's loopback mode: unicast probes to IP:port targets, no multicast, no namespace."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.discovery.inventory import Inventory
from agent.discovery.service import discover_once
from agent.discovery.settings import Credential, DiscoverySettings
from agent.simulator.scenario import parse_scenario

pytestmark = pytest.mark.rtsp
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def loop_cluster() -> Iterator[object]:
    from agent.simulator.cluster import Cluster
    from agent.simulator.rtsp import rtsp_unavailable_reason

    reason = rtsp_unavailable_reason()
    if reason:
        pytest.skip(reason)
    scenario = parse_scenario({"cameras": [{"name": "lo-a"}, {"name": "lo-b", "quirks": ["wrong_host"]}]})
    with Cluster(scenario, loopback=True) as cluster:
        yield cluster


def test_loopback_unicast_targets_found_and_interrogated(loop_cluster) -> None:  # type: ignore[no-untyped-def]
    """Two cameras on 127.0.0.1 with their own WS-Discovery ports are found by unicast and keep distinct ids."""
    infos = loop_cluster.infos()
    settings = DiscoverySettings(multicast=False, probe_window_s=1.0,
                                 unicast_targets=tuple(f"127.0.0.1:{i.wsd_port}" for i in infos),
                                 credentials=(Credential(infos[0].username, infos[0].password),))
    report = asyncio.run(discover_once(settings, inventory=Inventory()))
    assert report.interfaces == () and report.probe_stats.sent == 8  # 2 probes x 2 repeats x 2 targets
    assert sorted(r.info.camera_id for r in report.rows) == ["lo-a", "lo-b"]
    for row, info in zip(sorted(report.rows, key=lambda r: r.info.camera_id), infos, strict=True):
        assert row.ok and row.info.xaddr == info.xaddr and row.info.stream_uri == info.sub_uri


def test_loopback_cli_table(loop_cluster) -> None:  # type: ignore[no-untyped-def]
    """`discover --no-multicast --target IP:port` prints one row per camera, the password masked, exit 0."""
    infos = loop_cluster.infos()
    argv = [sys.executable, "-m", "agent", "discover", "--no-multicast", "--timeout", "1", "--user", infos[0].username]
    for info in infos:
        argv += ["--target", f"127.0.0.1:{info.wsd_port}"]
    env = {**os.environ, "MATTHAN_ONVIF_PASSWORD": infos[0].password}
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[1].split()[:3] == ["ID", "IP", "MAKE/MODEL"]
    rows = [ln for ln in lines if ln.startswith(("lo-a ", "lo-b "))]
    assert len(rows) == 2 and all("640x360 H264" in r and " ok " in r for r in rows)
    assert infos[0].password not in proc.stdout + proc.stderr
    js = subprocess.run([*argv, "--json"], capture_output=True, text=True, cwd=REPO, env=env, timeout=60,
                        stdin=subprocess.DEVNULL)
    assert {c["id"] for c in json.loads(js.stdout)["cameras"]} == {"lo-a", "lo-b"}
