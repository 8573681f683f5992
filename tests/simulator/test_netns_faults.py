"""Faults that change a camera's presence on the LAN, seen from the agent namespace by wsdiscovery and ONVIF."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from onvif import ONVIFCamera

from agent.simulator.cluster import CameraInfo, Cluster
from agent.simulator.netns import Lan
from tests.simulator.conftest import hello_bye_listener, scenario
from tests.simulator.test_netns import onvif_summary, wsd_search

pytestmark = [pytest.mark.netns, pytest.mark.rtsp]


def camera_year(info: CameraInfo) -> int:
    async def go() -> int:
        cam = ONVIFCamera(info.ip, info.onvif_port, info.username, info.password, adjust_time=True)
        try:
            reply = await (await cam.create_devicemgmt_service()).GetSystemDateAndTime()
            await cam.update_xaddrs()  # authenticated calls work once the client adopts the camera clock
            await (await cam.create_devicemgmt_service()).GetDeviceInformation()
            return reply.UTCDateTime.Date.Year
        finally:
            await cam.close()

    return asyncio.run(go())


def wait_until(pred: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_netns_fault_reboot_says_bye_then_hello_with_clock_in_1970(lan: Lan,
                                                                    make_cluster: Callable[..., Cluster]) -> None:
    """reboot: Bye, down for down_s, Hello again, and the camera clock restarts at 1970 (clients must adjust)."""
    cluster = make_cluster(scenario(2), lan=lan)
    info = cluster.info("cam01")
    assert lan.call(lan.agent_ns, camera_year, info) >= 2026
    with hello_bye_listener(lan) as events:
        assert cluster.inject("cam01", "reboot", down_s=1.5).down
        wait_until(lambda: ("bye", info.endpoint) in events)
        cluster.wait_up("cam01", timeout=15)
        wait_until(lambda: ("hello", info.endpoint) in events[events.index(("bye", info.endpoint)):])
    assert lan.call(lan.agent_ns, camera_year, cluster.info("cam01")) == 1970
    assert all(epr == info.endpoint for _kind, epr in events)  # the other camera stayed quiet


def test_netns_fault_new_ip_keeps_endpoint(lan: Lan, make_cluster: Callable[..., Cluster]) -> None:
    """new_ip: the camera answers at a new address with the same endpoint UUID; the old address is gone."""
    cluster = make_cluster(scenario(2), lan=lan)
    old = cluster.info("cam01")
    new = cluster.inject("cam01", "new_ip")
    assert new.ip != old.ip and new.endpoint == old.endpoint
    assert old.ip not in lan.camera_ips and new.ip in lan.camera_ips
    found = lan.call(lan.agent_ns, wsd_search)
    assert found[new.endpoint] == [new.xaddr]
    assert lan.call(lan.agent_ns, onvif_summary, new)[2] == new.sub_uri
    assert cluster.info("cam02").ip in lan.camera_ips  # the other camera kept its address


def test_netns_fault_gone_removes_address(lan: Lan, make_cluster: Callable[..., Cluster]) -> None:
    """gone: the camera's IP leaves the LAN and probes no longer find it; clear brings IP and services back."""
    cluster = make_cluster(scenario(2), lan=lan)
    info = cluster.inject("cam01", "gone")
    assert info.ip not in lan.camera_ips
    assert info.endpoint not in lan.call(lan.agent_ns, wsd_search)
    info = cluster.clear("cam01", "gone")
    assert info.ip in lan.camera_ips
    assert lan.call(lan.agent_ns, wsd_search)[info.endpoint] == [info.xaddr]
