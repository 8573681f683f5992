"""Loopback mode, checked with clients we did not write: ffprobe, PyAV, onvif-zeep-async, a raw WS-Discovery probe."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import time
from collections.abc import Callable, Iterator

import av
import pytest
import zeep.exceptions
from onvif import ONVIFCamera

from agent.simulator.cluster import CameraInfo, Cluster
from agent.simulator.rtsp import rtsp_unavailable_reason
from agent.simulator.scenario import parse_scenario
from tests.simulator.conftest import scenario, unicast_probe

pytestmark = pytest.mark.rtsp


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Two loopback cameras, the second with a +120 s clock skew, shared by this module's read-only tests."""
    reason = rtsp_unavailable_reason()
    if reason:
        pytest.skip(reason)
    sc = scenario(2)
    from dataclasses import replace

    sc = replace(sc, cameras=(sc.cameras[0], replace(sc.cameras[1], clock_skew_s=120.0)))
    with Cluster(sc, loopback=True) as c:
        yield c


def ffprobe(uri: str) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-timeout", "10000000", "-show_entries",
         "stream=codec_name,width,height,r_frame_rate", "-of", "json", uri],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["streams"][0]


def onvif_call(info: CameraInfo, fn, *, password: str | None = None, adjust_time: bool = True):
    async def go():
        cam = ONVIFCamera(info.ip, info.onvif_port, info.username, password or info.password,
                          adjust_time=adjust_time)
        try:
            await cam.update_xaddrs()
            return await fn(cam)
        finally:
            await cam.close()

    return asyncio.run(go())


def test_rtsp_ffprobe_reads_both_streams(cluster: Cluster) -> None:
    """ffprobe over RTSP/TCP sees H.264 at the configured sizes and frame rate on main and sub."""
    info = cluster.info("cam01")
    main = ffprobe(info.rtsp_uri("main", with_credentials=True))
    sub = ffprobe(info.rtsp_uri("sub", with_credentials=True))
    assert (main["codec_name"], main["width"], main["height"], main["r_frame_rate"]) == ("h264", 1280, 720, "15/1")
    assert (sub["codec_name"], sub["width"], sub["height"], sub["r_frame_rate"]) == ("h264", 640, 360, "15/1")


def test_rtsp_pyav_decodes_substream_in_real_time(cluster: Cluster) -> None:
    """PyAV decodes the substream at 640x360 and, past the frames buffered while probing, at 15 frames per second."""
    info = cluster.info("cam02")
    with av.open(info.rtsp_uri("sub", with_credentials=True), options={"rtsp_transport": "tcp"}, timeout=10) as c:
        stream = c.streams.video[0]
        first = 0.0
        for frames, frame in enumerate(c.decode(stream), start=1):
            assert (frame.width, frame.height) == (640, 360)
            if frames == 40:  # av.open buffers up to ~2 s of frames while probing; time the live ones
                first = time.monotonic()
            if frames == 85:
                break
        elapsed = time.monotonic() - first
    assert 2.4 < elapsed < 4.0, f"45 frames took {elapsed:.2f} s, not about 3 s"


def test_rtsp_pyav_decodes_main_stream(cluster: Cluster) -> None:
    """PyAV decodes the main stream at 1280x720 and sees its 15 fps rate."""
    info = cluster.info("cam01")
    with av.open(info.rtsp_uri("main", with_credentials=True), options={"rtsp_transport": "tcp"}, timeout=10) as c:
        stream = c.streams.video[0]
        assert stream.guessed_rate == 15
        for n, frame in enumerate(c.decode(stream), start=1):
            assert (frame.width, frame.height) == (1280, 720)
            if n == 5:
                break


def test_rtsp_frame_rate_and_keyframe_interval_seen_by_ffprobe(make_cluster: Callable[..., Cluster]) -> None:
    """A 10 fps camera with a 1 s keyframe interval: ffprobe sees 10/1, an IDR every 10th frame, 0.1 s apart."""
    sc = parse_scenario({"scenes": {"gop": {"loop_s": 4}},
                         "defaults": {"scene": "gop", "fps": 10, "keyframe_s": 1, "main": [320, 180]}}, cameras=1)
    info = make_cluster(sc).info("cam01")
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-timeout", "10000000", "-read_intervals", "%+#35",
         "-show_frames", "-show_entries", "frame=key_frame,pts_time:stream=r_frame_rate,width,height", "-of", "json",
         info.rtsp_uri("sub", with_credentials=True)],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    probe = json.loads(out.stdout)
    assert probe["streams"][0] == {"width": 640, "height": 360, "r_frame_rate": "10/1"}
    frames = probe["frames"]
    assert len(frames) >= 31, "ffprobe returned too few frames to see three keyframe intervals"
    keys = [i for i, f in enumerate(frames) if f["key_frame"] == 1]
    assert keys == list(range(0, len(frames), 10)), keys  # a session starts on an IDR, then one every 10 frames
    pts = [float(f["pts_time"]) for f in frames if "pts_time" in f]
    assert len(pts) >= 30 and all(abs(b - a - 0.1) < 0.002 for a, b in itertools.pairwise(pts))


def test_rtsp_wrong_password_is_refused(cluster: Cluster) -> None:
    """An RTSP client with a wrong password gets 401 Unauthorized."""
    info = cluster.info("cam01")
    uri = info.sub_uri.replace("rtsp://", "rtsp://admin:wrong@")
    out = subprocess.run(["ffprobe", "-v", "error", "-rtsp_transport", "tcp", uri], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode != 0 and "401" in out.stderr


def test_onvif_reads_device_profiles_uris_and_snapshot(cluster: Cluster) -> None:
    """onvif-zeep-async reads device information, two profiles, stream URIs and a JPEG snapshot."""
    info = cluster.info("cam01")

    async def read(cam: ONVIFCamera) -> tuple:
        devinfo = await (await cam.create_devicemgmt_service()).GetDeviceInformation()
        media = await cam.create_media_service()
        profiles = await media.GetProfiles()
        uris = []
        for p in profiles:
            r = await media.GetStreamUri({"StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
                                          "ProfileToken": p.token})
            uris.append(r.Uri)
        snap = await cam.get_snapshot(profiles[1].token)
        return devinfo, profiles, uris, snap

    devinfo, profiles, uris, snap = onvif_call(info, read)
    assert devinfo.Manufacturer == "Matthan Sim"
    sizes = [(p.VideoEncoderConfiguration.Resolution.Width, p.VideoEncoderConfiguration.Resolution.Height)
             for p in profiles]
    assert sizes == [(1280, 720), (640, 360)]
    assert uris == [info.main_uri, info.sub_uri]
    assert snap is not None and snap[:2] == b"\xff\xd8"


def test_onvif_wrong_password_gets_not_authorized(cluster: Cluster) -> None:
    """A wrong password gets a SOAP fault with the ter:NotAuthorized subcode."""
    info = cluster.info("cam01")

    async def read(cam: ONVIFCamera) -> object:
        return await (await cam.create_devicemgmt_service()).GetDeviceInformation()

    with pytest.raises(zeep.exceptions.Fault) as err:
        onvif_call(info, read, password="wrong")
    subcodes = [(q.namespace, q.localname) for q in err.value.subcodes]
    assert subcodes == [("http://www.onvif.org/ver10/error", "NotAuthorized")]


def test_onvif_clock_skew_needs_adjusted_time(cluster: Cluster) -> None:
    """With +120 s skew, adjust_time=True authenticates and reports the skew; ignoring the camera clock fails."""
    info = cluster.info("cam02")

    async def read(cam: ONVIFCamera) -> object:
        await (await cam.create_devicemgmt_service()).GetDeviceInformation()
        return cam.dt_diff

    diff = onvif_call(info, read)
    assert 115 < diff.total_seconds() < 125
    with pytest.raises(zeep.exceptions.Fault):
        onvif_call(info, read, adjust_time=False)


def test_wsd_unicast_probe_gets_probe_match(cluster: Cluster) -> None:
    """A unicast Probe gets one ProbeMatch naming the probe, the stable endpoint, scopes and the XAddr."""
    info = cluster.info("cam01")
    mid, replies = unicast_probe(info.ip, info.wsd_port)
    assert len(replies) == 1
    text = replies[0].decode()
    assert f"<a:RelatesTo>{mid}</a:RelatesTo>" in text
    assert info.endpoint in text and info.xaddr in text
    assert "onvif://www.onvif.org/name/cam01" in text and "<d:ProbeMatches>" in text


def test_wsd_probe_for_other_types_is_ignored(cluster: Cluster) -> None:
    """A Probe for a type the camera is not (a printer) gets no answer."""
    info = cluster.info("cam01")
    _mid, replies = unicast_probe(info.ip, info.wsd_port, types="dn:Printer", wait_s=0.5)
    assert replies == []
