"""The opt-in subnet fallback, inside a private namespace: finds an ONVIF device that never answers probes."""

from __future__ import annotations

import asyncio

import pytest

from agent.discovery.scan import _Pacer, confirm_onvif, scan_subnet
from agent.discovery.settings import check_scan_subnet
from agent.simulator.netns import AGENT_IP, Lan
from tests.discovery.conftest import NsLoop

TIME_REPLY = (
    b'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
    b'<s:Body><tds:GetSystemDateAndTimeResponse xmlns:tds="http://www.onvif.org/ver10/device/wsdl">'
    b"<tds:SystemDateAndTime/></tds:GetSystemDateAndTimeResponse></s:Body></s:Envelope>"
)


async def _serve(ip: str, port: int, reply: bytes | None) -> asyncio.Server:
    """A TCP listener; with `reply`, a one-shot HTTP server answering every request with it."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if reply is not None:
            await reader.read(4096)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nContent-Length: "
                         + str(len(reply)).encode() + b"\r\nConnection: close\r\n\r\n" + reply)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, ip, port)


def test_scan_subnet_wider_than_24_refused() -> None:
    """A /23 or wider is refused before any packet is sent."""
    with pytest.raises(ValueError, match="wider than a /24"):
        check_scan_subnet("198.18.0.0/23")
    with pytest.raises(ValueError, match="wider than a /24"):
        asyncio.run(scan_subnet("10.0.0.0/8"))


def test_scan_pacer_spaces_attempts() -> None:
    """At 100 attempts per second, 21 attempts take at least 0.2 s of loop time."""

    async def run() -> float:
        pacer = _Pacer(100.0)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.gather(*(pacer.wait() for _ in range(21)))
        return loop.time() - start

    assert asyncio.run(run()) >= 0.19


@pytest.mark.netns
def test_scan_finds_onvif_device_that_ignores_probes(lan: Lan, agent_loop: NsLoop) -> None:
    """A device answering ONVIF on 8080 (no WS-Discovery) is confirmed; an RTSP-only host is a bare hit."""
    onvif_ip, rtsp_ip = lan.add_camera_ip(), lan.add_camera_ip()
    cam_loop = NsLoop(lan, lan.camera_ns)
    try:
        servers = [cam_loop.run(_serve(onvif_ip, 8080, TIME_REPLY)), cam_loop.run(_serve(rtsp_ip, 554, None))]
        hits = agent_loop.run(scan_subnet("198.18.0.0/24", rate_per_s=2000, concurrency=256,
                                          connect_timeout_s=0.3, skip=frozenset({AGENT_IP})), timeout=60)
        for srv in servers:
            cam_loop.loop.call_soon_threadsafe(srv.close)
    finally:
        cam_loop.close()
    by_ip = {h.ip: h for h in hits}
    assert set(by_ip) == {onvif_ip, rtsp_ip}
    assert by_ip[onvif_ip].xaddr == f"http://{onvif_ip}:8080/onvif/device_service"
    assert by_ip[onvif_ip].open_ports == (8080,)
    assert by_ip[rtsp_ip].xaddr is None and by_ip[rtsp_ip].open_ports == (554,)


@pytest.mark.netns
def test_scan_confirm_rejects_non_onvif_http(lan: Lan, agent_loop: NsLoop) -> None:
    """An HTTP server that is not ONVIF (a router's login page) is not confirmed."""
    ip = lan.add_camera_ip()
    cam_loop = NsLoop(lan, lan.camera_ns)
    try:
        cam_loop.run(_serve(ip, 80, b"<html>login</html>"))
        assert agent_loop.run(confirm_onvif(ip, 80)) is None
    finally:
        cam_loop.close()


@pytest.mark.netns
def test_scan_round_lists_unconfirmed_camera_but_not_web_servers(lan: Lan, agent_loop: NsLoop) -> None:
    """In a round, an RTSP-only host is listed as unconfirmed (not recorded); a plain web server is not listed."""
    from agent.discovery.inventory import Inventory
    from agent.discovery.service import discover_once
    from agent.discovery.settings import DiscoverySettings
    from agent.discovery.wsd import Interface
    from agent.simulator.netns import AGENT_IF

    onvif_ip, rtsp_ip, web_ip = lan.add_camera_ip(), lan.add_camera_ip(), lan.add_camera_ip()
    cam_loop = NsLoop(lan, lan.camera_ns)
    inventory = Inventory()
    try:
        cam_loop.run(_serve(onvif_ip, 8080, TIME_REPLY))
        cam_loop.run(_serve(rtsp_ip, 554, None))
        cam_loop.run(_serve(web_ip, 80, b"<html>router</html>"))
        settings = DiscoverySettings(probe_window_s=0.2, scan_subnets=("198.18.0.0/24",), scan_rate_per_s=2000,
                                     scan_concurrency=256, scan_connect_timeout_s=0.3)
        report = agent_loop.run(discover_once(settings, inventory=inventory, interrogate=False,
                                              interfaces=[Interface(AGENT_IF, AGENT_IP)]), timeout=60)
    finally:
        cam_loop.close()
    rows = {r.info.ip: r for r in report.rows}
    assert set(rows) == {onvif_ip, rtsp_ip}
    assert rows[rtsp_ip].info.camera_id == f"unconfirmed-{rtsp_ip.replace('.', '-')}"
    assert rows[rtsp_ip].reason is not None and rows[rtsp_ip].reason.value == "no ONVIF answer"
    assert [e.last_ip for e in inventory.entries()] == [onvif_ip]
