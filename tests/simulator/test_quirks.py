"""Each quirk of cheap cameras, observed by a real client from the agent namespace."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import zeep.exceptions
from onvif import ONVIFCamera
from wsdiscovery.discovery import ThreadedWSDiscovery

from agent.simulator.cluster import CameraInfo, Cluster
from agent.simulator.netns import Lan, netns_unavailable_reason
from agent.simulator.rtsp import rtsp_unavailable_reason
from agent.simulator.scenario import parse_scenario
from tests.simulator.conftest import unicast_probe
from tests.simulator.test_netns import NVT

pytestmark = [pytest.mark.netns, pytest.mark.rtsp]

QUIRKY = {"q-wrong": "wrong_host", "q-nowrap": "no_probe_matches_wrapper", "q-space": "unescaped_scope_space",
          "q-dup": "duplicate_probe_match", "q-nohello": "no_hello", "q-nopull": "no_pullpoint",
          "q-h265": "h265_main"}


@dataclass
class Rig:
    lan: Lan
    cluster: Cluster
    hellos: list[str]
    found: dict[str, object]  # endpoint -> wsdiscovery Service

    def info(self, name: str) -> CameraInfo:
        return self.cluster.info(name)


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    """One camera per quirk plus a plain one, in a namespace; a wsdiscovery listener heard their Hellos."""
    reason = netns_unavailable_reason() or rtsp_unavailable_reason()
    if reason:
        pytest.skip(reason)
    cams = [{"name": "plain"}] + [{"name": n, "quirks": [q]} for n, q in QUIRKY.items()]
    sc = parse_scenario({"cameras": cams})
    hellos: list[str] = []
    ready, done = threading.Event(), threading.Event()
    with Lan() as lan:

        def listen() -> None:
            wsd = ThreadedWSDiscovery()
            wsd.setRemoteServiceHelloCallback(lambda s: hellos.append(s.getEPR()))
            wsd.start()
            ready.set()
            done.wait(300)
            wsd.stop()

        thread = lan.start_thread(lan.agent_ns, listen)
        assert ready.wait(10)
        try:
            with Cluster(sc, lan=lan) as cluster:

                def search() -> dict[str, object]:
                    wsd = ThreadedWSDiscovery()
                    wsd.start()
                    try:
                        return {s.getEPR(): s for s in wsd.searchServices(types=[NVT], timeout=2)}
                    finally:
                        wsd.stop()

                found = lan.call(lan.agent_ns, search)
                yield Rig(lan, cluster, hellos, found)
        finally:
            done.set()
            thread.join(10)


def probe(rig: Rig, name: str) -> tuple[str, list[bytes]]:
    info = rig.info(name)
    return rig.lan.call(rig.lan.agent_ns, unicast_probe, info.ip, info.wsd_port)


def onvif(rig: Rig, name: str, fn, **kwargs: object) -> object:
    info = rig.info(name)

    async def go() -> object:
        cam = ONVIFCamera(info.ip, info.onvif_port, info.username, info.password, adjust_time=True, **kwargs)
        try:
            await cam.update_xaddrs()
            return await fn(cam)
        finally:
            await cam.close()

    return rig.lan.call(rig.lan.agent_ns, lambda: asyncio.run(go()))


async def sub_stream_uri(cam: ONVIFCamera) -> str:
    media = await cam.create_media_service()
    profiles = await media.GetProfiles()
    reply = await media.GetStreamUri({"StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
                                      "ProfileToken": profiles[1].token})
    return reply.Uri


def test_quirk_plain_camera_is_normal(rig: Rig) -> None:
    """The control camera: found by probe, announced by Hello, its XAddr and stream URI name its own IP."""
    info = rig.info("plain")
    assert info.endpoint in rig.found and info.endpoint in rig.hellos
    assert rig.found[info.endpoint].getXAddrs() == [info.xaddr]
    assert onvif(rig, "plain", sub_stream_uri) == info.sub_uri


def test_quirk_wrong_host_names_loopback(rig: Rig) -> None:
    """wrong_host: XAddrs in the ProbeMatch and the stream URI from GetStreamUri name 127.0.0.1."""
    info = rig.info("q-wrong")
    assert rig.found[info.endpoint].getXAddrs() == [f"http://127.0.0.1:{info.onvif_port}/onvif/device_service"]
    uri = onvif(rig, "q-wrong", sub_stream_uri, nat_override=True)  # the library rewrites XAddrs, not streams
    assert uri == info.sub_uri.replace(info.ip, "127.0.0.1")


def test_quirk_probe_match_without_wrapper(rig: Rig) -> None:
    """no_probe_matches_wrapper: the Body holds a bare ProbeMatch; wsdiscovery still finds the camera."""
    _mid, replies = probe(rig, "q-nowrap")
    body = ET.fromstring(replies[0]).find("{http://www.w3.org/2003/05/soap-envelope}Body")
    assert [child.tag.rsplit("}", 1)[1] for child in body] == ["ProbeMatch"]
    assert rig.info("q-nowrap").endpoint in rig.found


def test_quirk_unescaped_space_splits_scope(rig: Rig) -> None:
    """unescaped_scope_space: the raw space splits the name scope in two for a standard parser."""
    scopes = [str(s.getValue()) for s in rig.found[rig.info("q-space").endpoint].getScopes()]
    assert "onvif://www.onvif.org/name/q" in scopes and "space" in scopes
    plain = [str(s.getValue()) for s in rig.found[rig.info("plain").endpoint].getScopes()]
    assert "onvif://www.onvif.org/name/plain" in plain


def test_quirk_duplicate_probe_match(rig: Rig) -> None:
    """duplicate_probe_match: one unicast probe gets two identical answers; a normal camera sends one."""
    mid, replies = probe(rig, "q-dup")
    assert len(replies) == 2 and replies[0] == replies[1] and mid.encode() in replies[0]
    assert len(probe(rig, "plain")[1]) == 1


def test_quirk_no_hello_is_silent_at_start(rig: Rig) -> None:
    """no_hello: every camera but this one announced itself, yet a probe finds it."""
    info = rig.info("q-nohello")
    others = {i.endpoint for i in rig.cluster.infos() if i.name != "q-nohello"}
    deadline = time.monotonic() + 5
    while not others <= set(rig.hellos) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert others <= set(rig.hellos)
    assert info.endpoint not in rig.hellos and info.endpoint in rig.found


def test_quirk_no_pullpoint_refuses_subscription(rig: Rig) -> None:
    """no_pullpoint: capabilities say no PullPoint and CreatePullPointSubscription gets a SOAP fault."""
    import datetime as dt

    async def caps(cam: ONVIFCamera) -> object:
        return (await cam.get_capabilities())["Events"]["WSPullPointSupport"]

    assert onvif(rig, "q-nopull", caps) is False

    async def subscribe(cam: ONVIFCamera) -> object:
        return await cam.create_pullpoint_manager(dt.timedelta(seconds=60), lambda: None)

    with pytest.raises(zeep.exceptions.Fault):
        onvif(rig, "q-nopull", subscribe)


def test_quirk_h265_main_stream(rig: Rig) -> None:
    """h265_main: ffprobe sees HEVC on the main stream, H.264 on the sub; the profile says H265."""
    info = rig.info("q-h265")

    def codec(role: str) -> str:
        out = rig.lan.run(rig.lan.agent_ns, ["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_entries",
                                             "stream=codec_name,width", "-of", "json",
                                             info.rtsp_uri(role, with_credentials=True)],
                          capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)["streams"][0]["codec_name"]

    assert codec("main") == "hevc" and codec("sub") == "h264"

    async def encodings(cam: ONVIFCamera) -> list[str]:
        profiles = await (await cam.create_media_service()).GetProfiles()
        return [p.VideoEncoderConfiguration.Encoding for p in profiles]

    assert onvif(rig, "q-h265", encodings) == ["H265", "H264"]
