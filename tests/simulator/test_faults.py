"""Faults on demand in loopback mode, each observed by a real client (PyAV, ffprobe, onvif-zeep-async, sockets)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import av
import numpy as np
import pytest
import zeep.exceptions
from onvif import ONVIFCamera

from agent.simulator.cluster import CameraInfo, Cluster, ControlError
from agent.simulator.scenario import parse_scenario
from tests.simulator.conftest import scenario, unicast_probe

pytestmark = pytest.mark.rtsp


def open_sub(info: CameraInfo, read_timeout: float = 3.0) -> av.container.InputContainer:
    return av.open(info.rtsp_uri("sub", with_credentials=True), options={"rtsp_transport": "tcp"},
                   timeout=(15.0, read_timeout))


def ffprobe_ok(info: CameraInfo, password: str | None = None) -> subprocess.CompletedProcess[str]:
    uri = info.sub_uri.replace("rtsp://", f"rtsp://{info.username}:{password or info.password}@")
    return subprocess.run(["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-timeout", "10000000", uri],
                          capture_output=True, text=True, timeout=60)


def device_info(info: CameraInfo, password: str | None = None) -> object:
    async def go() -> object:
        cam = ONVIFCamera(info.ip, info.onvif_port, info.username, password or info.password, adjust_time=True)
        try:
            await cam.update_xaddrs()
            return await (await cam.create_devicemgmt_service()).GetDeviceInformation()
        finally:
            await cam.close()

    return asyncio.run(go())


def test_fault_rtsp_refuse_then_recover(make_cluster: Callable[..., Cluster]) -> None:
    """rtsp_refuse: TCP connections to the RTSP port are refused while ONVIF still answers; clear restores it."""
    cluster = make_cluster(scenario(1))
    info = cluster.inject("cam01", "rtsp_refuse")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((info.ip, info.rtsp_port), timeout=5).close()
    out = ffprobe_ok(info)
    assert out.returncode != 0 and "Connection refused" in out.stderr
    assert device_info(info).Manufacturer == "Matthan Sim"
    info = cluster.clear("cam01", "rtsp_refuse")
    assert ffprobe_ok(info).returncode == 0


def test_fault_rtsp_stall_keeps_socket_open(make_cluster: Callable[..., Cluster]) -> None:
    """rtsp_stall: a playing PyAV client stops getting frames (read timeout) while the server still accepts."""
    cluster = make_cluster(scenario(1))
    info = cluster.info("cam01")
    with open_sub(info) as container:
        frames = container.decode(container.streams.video[0])
        for _ in range(10):
            next(frames)
        cluster.inject("cam01", "rtsp_stall")
        start = time.monotonic()
        with pytest.raises((av.error.ExitError, av.error.EOFError, StopIteration)):
            for _ in range(200):  # at most ~13 s of frames; the stall must end this well before
                next(frames)
        assert time.monotonic() - start < 12
        socket.create_connection((info.ip, info.rtsp_port), timeout=5).close()  # listening, accepting
    cluster.clear("cam01", "rtsp_stall")
    with open_sub(info) as container:
        assert next(container.decode(container.streams.video[0])).width == 640


def test_fault_freeze_repeats_one_frame(make_cluster: Callable[..., Cluster]) -> None:
    """freeze: within a keyframe interval RTSP frames become identical, snapshots too; after clear they change."""
    cluster = make_cluster(scenario(1))
    info = cluster.info("cam01")

    def same_run(frames: object, n: int) -> int:
        prev, longest, run = None, 0, 0
        for _ in range(n):
            y = next(frames).to_ndarray(format="gray")  # type: ignore[call-overload]
            run = run + 1 if prev is not None and np.array_equal(prev, y) else 0
            longest, prev = max(longest, run), y
        return longest

    async def snapshot() -> bytes:
        async with aiohttp.ClientSession() as session:
            mw = (aiohttp.DigestAuthMiddleware(info.username, info.password),)
            async with session.get(info.snapshot_uri, middlewares=mw) as resp:
                return await resp.read()

    with open_sub(info) as container:
        frames = container.decode(container.streams.video[0])
        assert same_run(frames, 40) == 0
        cluster.inject("cam01", "freeze")
        first = asyncio.run(snapshot())
        time.sleep(1.1)  # snapshots are stored twice a second; a live camera's would have changed by now
        assert asyncio.run(snapshot()) == first
        assert same_run(frames, 90) >= 30  # frozen on the next keyframe (<= 2 s), then only repeats
        cluster.clear("cam01", "freeze")
        for _ in range(60):  # the picture resumes on the next keyframe
            next(frames)
        assert same_run(frames, 20) == 0


def test_fault_gone_silences_every_service(make_cluster: Callable[..., Cluster]) -> None:
    """gone: ONVIF, snapshot, RTSP and WS-Discovery all stop answering; clear brings all back on the same ports."""
    cluster = make_cluster(scenario(1))
    before = cluster.info("cam01")
    info = cluster.inject("cam01", "gone")
    assert info.down
    for port in (info.onvif_port, info.rtsp_port):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((info.ip, port), timeout=5).close()
    assert unicast_probe(info.ip, info.wsd_port, wait_s=0.5)[1] == []
    info = cluster.clear("cam01", "gone")
    assert (info.onvif_port, info.rtsp_port, info.wsd_port) == (before.onvif_port, before.rtsp_port,
                                                                before.wsd_port)
    assert device_info(info).Manufacturer == "Matthan Sim"
    assert ffprobe_ok(info).returncode == 0
    assert len(unicast_probe(info.ip, info.wsd_port)[1]) == 1


def test_fault_password_change_locks_out_old_password(make_cluster: Callable[..., Cluster]) -> None:
    """password_change: the old password fails on ONVIF, RTSP and the snapshot; the new one works everywhere."""
    cluster = make_cluster(scenario(1))
    old = cluster.info("cam01").password
    info = cluster.inject("cam01", "password_change", password="doi-mat-khau")
    with pytest.raises(zeep.exceptions.Fault):
        device_info(info, password=old)
    assert device_info(info).Manufacturer == "Matthan Sim"
    assert "401" in ffprobe_ok(info, password=old).stderr
    assert ffprobe_ok(info).returncode == 0

    async def snapshot_status(password: str) -> int:
        async with aiohttp.ClientSession() as session:
            mw = (aiohttp.DigestAuthMiddleware(info.username, password),)
            async with session.get(info.snapshot_uri, middlewares=mw) as resp:
                return resp.status

    assert asyncio.run(snapshot_status(old)) == 401
    assert asyncio.run(snapshot_status("doi-mat-khau")) == 200


def test_fault_scheduled_in_scenario_starts_and_ends(make_cluster: Callable[..., Cluster]) -> None:
    """A fault scheduled in the scenario file starts at at_s and is cleared after duration_s."""
    sc = parse_scenario({"cameras": [{"name": "gate"}],
                         "faults": [{"camera": "gate", "fault": "rtsp_refuse", "at_s": 1, "duration_s": 2}]})
    cluster = make_cluster(sc)

    def wait_for(state: bool) -> float:
        deadline = time.monotonic() + 15
        while ("rtsp_refuse" in cluster.info("gate").faults) != state:
            assert time.monotonic() < deadline, f"fault never became {state}"
            time.sleep(0.02)
        return time.time() - cluster.anchor

    started = wait_for(True)
    ended = wait_for(False)
    assert 0.9 < started < 2.0 and 2.9 < ended < 4.0


def test_fault_control_errors_are_clear(make_cluster: Callable[..., Cluster]) -> None:
    """Unknown cameras, unknown faults, bad arguments and clearing an action fault are refused with a reason."""
    cluster = make_cluster(scenario(1))
    with pytest.raises(ControlError, match="unknown camera 'nope'"):
        cluster.inject("nope", "freeze")
    with pytest.raises(ControlError, match="unknown fault 'melt'"):
        cluster.inject("cam01", "melt")
    with pytest.raises(ControlError, match="unknown key"):
        cluster.inject("cam01", "reboot", seconds=3)
    with pytest.raises(ControlError, match="cannot be cleared"):
        cluster.clear("cam01", "reboot")
    assert cluster.info("cam01").faults == frozenset()


def test_fault_control_socket_applies_and_refuses(make_cluster: Callable[..., Cluster], tmp_path: Path) -> None:
    """The unix-socket control channel starts and clears faults, and answers bad input with an error line."""
    from agent.simulator.control import ControlServer, send_control

    cluster = make_cluster(scenario(1))
    path = str(tmp_path / "sim.sock")
    server = ControlServer(cluster, path)
    try:
        assert send_control(path, {"camera": "cam01", "fault": "freeze"})["faults"] == ["freeze"]
        assert send_control(path, {"camera": "cam01", "fault": "freeze", "clear": True})["faults"] == []
        assert "unknown camera" in send_control(path, {"camera": "x", "fault": "freeze"})["error"]
        assert "unknown key" in send_control(path, {"camera": "cam01", "fault": "freeze", "when": 3})["error"]
        assert send_control(path, {"list": True})["cameras"][0]["name"] == "cam01"
    finally:
        server.close()
