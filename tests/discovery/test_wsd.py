"""Our WS-Discovery probe and Hello/Bye listener against a third-party peer, inside a private namespace."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading

import pytest
from wsdiscovery import QName, Scope
from wsdiscovery.publishing import ThreadedWSPublishing
from wsdiscovery.udp import UNICAST_UDP_REPEAT

from agent.discovery.parse import parse_datagram
from agent.discovery.results import Via, WsdEvent, WsdEventKind
from agent.discovery.wsd import (
    ACTION_PROBE,
    NS_DN,
    WSD_GROUP,
    WSD_PORT,
    HelloListener,
    Interface,
    build_probe,
    list_interfaces,
    new_probes,
    probe,
)
from agent.simulator.netns import AGENT_IF, AGENT_IP, Lan
from tests.discovery import samples
from tests.discovery.conftest import NsLoop

LAN0 = Interface(AGENT_IF, AGENT_IP)
PEER_UUID = "urn:uuid:0d9b7f5e-7c8e-4a51-9d0b-2f1e3c4d5a6b"


def test_wsd_probe_message_shape() -> None:
    """The probe is SOAP 1.2 with the WS-Discovery Probe action, a urn:uuid MessageID and dn declared."""
    probes = new_probes()
    assert len(probes) == 2 and all(mid.startswith("urn:uuid:") for mid in probes)
    nvt = build_probe("urn:uuid:x", "dn", NS_DN, "NetworkVideoTransmitter").decode()
    assert f'xmlns:dn="{NS_DN}"' in nvt and "<d:Types>dn:NetworkVideoTransmitter</d:Types>" in nvt
    assert f">{ACTION_PROBE}<" in nvt and "http://www.w3.org/2003/05/soap-envelope" in nvt
    assert any(b"tds:Device" in p and b'xmlns:tds="' in p for p in probes.values())
    assert parse_datagram(nvt.encode()).kind.value == "probe"


class _Publisher(ThreadedWSPublishing):
    """wsdiscovery 2.1's publisher, minus one bug: it queues every unicast reply on its IPv6 thread too, which
    then dies with gaierror sending to an IPv4 address. Replies to our IPv4 probes go out on IPv4 only."""

    # Same signature as the method it replaces (camelCase is the library's).
    def sendUnicastMessage(self, env, host, port, initialDelay=0, unicast_num=UNICAST_UDP_REPEAT):  # type: ignore
        self._networkingThread_v4.addUnicastMessage(env, host, port, initialDelay, unicast_num)


def _start_publisher(cam_ip: str) -> _Publisher:
    """Start a wsdiscovery publisher; call inside the camera namespace (its threads inherit it)."""
    pub = _Publisher(uuid_=PEER_UUID)
    pub.start()
    pub.publishService(
        types=[QName(NS_DN, "NetworkVideoTransmitter", "dn")],
        scopes=[Scope("onvif://www.onvif.org/name/wsd%20peer"), Scope("onvif://www.onvif.org/hardware/PyPI")],
        xAddrs=[f"http://{cam_ip}:8080/onvif/device_service"],
    )
    return pub


@pytest.mark.netns
def test_wsd_probe_finds_wsdiscovery_publisher(lan: Lan, agent_loop: NsLoop) -> None:
    """A PyPI wsdiscovery publisher on the camera side is found by our multicast probe on lan0."""
    cam_ip = lan.add_camera_ip()
    pub = lan.call(lan.camera_ns, _start_publisher, cam_ip)
    try:
        result = agent_loop.run(probe([LAN0], window_s=1.5))
    finally:
        pub.stop()
    (dev,) = [d for d in result.devices if d.endpoint_address == PEER_UUID]
    assert dev.ip == cam_ip and dev.via is Via.MULTICAST and dev.interface == AGENT_IF
    assert dev.xaddr == f"http://{cam_ip}:8080/onvif/device_service"
    assert dev.name == "wsd peer" and dev.hardware == "PyPI"
    assert result.stats.sent == 4  # two probes, each sent twice
    assert result.stats.rejected == 0


@pytest.mark.netns
def test_wsd_unicast_probe_finds_publisher(lan: Lan, agent_loop: NsLoop) -> None:
    """With multicast off, a unicast probe to the peer's address finds it (routers that drop multicast)."""
    cam_ip = lan.add_camera_ip()
    pub = lan.call(lan.camera_ns, _start_publisher, cam_ip)
    try:
        result = agent_loop.run(probe([LAN0], window_s=1.5, unicast_targets=[cam_ip], multicast=False))
    finally:
        pub.stop()
    assert [(d.ip, d.via) for d in result.devices] == [(cam_ip, Via.UNICAST)]


@pytest.mark.netns
def test_wsd_list_interfaces_inside_namespace(lan: Lan) -> None:
    """By default the agent namespace offers lan0 and not loopback; an unknown name is a clear error."""
    found = lan.call(lan.agent_ns, list_interfaces)
    assert found == [LAN0]
    assert lan.call(lan.agent_ns, list_interfaces, [AGENT_IP]) == [LAN0]
    with pytest.raises(ValueError, match="no IPv4 interface named 'wlan9'"):
        lan.call(lan.agent_ns, list_interfaces, ["wlan9"])


def _hostile_responder(cam_ip: str, ready: threading.Event, done: threading.Event) -> None:
    """Answer the first probe with junk, XXE, a foreign reply, then one valid match, in that order."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("", WSD_PORT))
    mreq = struct.pack("4s4s", socket.inet_aton(WSD_GROUP), socket.inet_aton(cam_ip))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    sock.settimeout(10)
    ready.set()
    try:
        data, addr = sock.recvfrom(65535)
        mid = parse_datagram(data).message_id or ""
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        out.bind((cam_ip, 0))
        for payload in (b"\x00" * 60000, samples.XXE, samples.LAUGHS, b"<Envelope><Body>",
                        samples.PROBE_MATCH):  # the last answers someone else's MessageID
            out.sendto(payload, addr)
        out.sendto(samples.PROBE_MATCH.replace(samples.RELATES.encode(), mid.encode()), addr)
        out.close()
    finally:
        sock.close()
        done.set()


@pytest.mark.netns
def test_wsd_probe_survives_hostile_peer(lan: Lan, agent_loop: NsLoop) -> None:
    """Junk, XXE, billion laughs and foreign replies are counted and dropped; the valid match is still found."""
    cam_ip = lan.add_camera_ip()
    ready, done = threading.Event(), threading.Event()
    lan.start_thread(lan.camera_ns, _hostile_responder, cam_ip, ready, done, name="hostile")
    assert ready.wait(10)
    result = agent_loop.run(probe([LAN0], window_s=1.0, repeat=1))
    assert done.wait(10)
    assert result.stats.rejected == 4 and result.stats.foreign == 1
    (dev,) = result.devices
    assert dev.endpoint_uuid == samples.UUID
    assert dev.ip == cam_ip and dev.xaddr == f"http://{cam_ip}/onvif/device_service"  # 127.0.0.1 not trusted


@pytest.mark.netns
def test_wsd_hello_and_bye_seen(lan: Lan, agent_loop: NsLoop) -> None:
    """The listener hears the publisher's Hello on start and its Bye when it withdraws its service."""
    cam_ip = lan.add_camera_ip()
    events: list[WsdEvent] = []
    got_hello, got_bye = threading.Event(), threading.Event()

    def on_event(ev: WsdEvent) -> None:
        events.append(ev)
        (got_hello if ev.kind is WsdEventKind.HELLO else got_bye).set()

    async def start() -> HelloListener:
        listener = HelloListener(on_event, [LAN0])
        await listener.start()
        return listener

    listener = agent_loop.run(start())
    pub = lan.call(lan.camera_ns, _start_publisher, cam_ip)
    try:
        assert got_hello.wait(10), "no Hello heard"
        pub.clearLocalServices()  # sends Bye (wsdiscovery's own stop() skips it)
        assert got_bye.wait(10), "no Bye heard"
    finally:
        pub.stop()
        agent_loop.loop.call_soon_threadsafe(listener.close)
    hello = next(e for e in events if e.kind is WsdEventKind.HELLO)
    assert hello.source_ip == cam_ip and hello.endpoint_address == PEER_UUID
    assert hello.device is not None and hello.device.via is Via.HELLO and hello.device.name == "wsd peer"
    bye = next(e for e in events if e.kind is WsdEventKind.BYE)
    assert bye.endpoint_uuid == PEER_UUID.removeprefix("urn:uuid:")


def test_wsd_probe_with_no_interfaces_returns_nothing() -> None:
    """With no interface and no target the probe sends nothing and finds nothing (no real LAN touched)."""
    result = asyncio.run(probe([], window_s=0.05))
    assert result.devices == () and result.stats.sent == 0


def test_wsd_listener_feed_rejects_junk_and_survives_handler_bug() -> None:
    """Junk and XXE are counted, a Probe is ignored, Hello/Bye reach the handler, and a handler bug is contained."""
    seen: list[WsdEvent] = []

    def handler(ev: WsdEvent) -> None:
        seen.append(ev)
        if len(seen) == 1:
            raise ValueError("consumer bug")

    listener = HelloListener(handler, [LAN0])
    for data in (b"\x00" * 1000, samples.XXE, build_probe("urn:uuid:x", "dn", NS_DN, "NetworkVideoTransmitter"),
                 samples.HELLO, samples.BYE):
        listener._feed(data, "198.18.0.11")
    assert listener.stats.rejected == 2 and listener.stats.received == 5
    assert [e.kind for e in seen] == [WsdEventKind.HELLO, WsdEventKind.BYE]
    assert seen[0].device is not None and seen[0].device.xaddr == "http://198.18.0.11/onvif/device_service"
