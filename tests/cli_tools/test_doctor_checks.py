"""Doctor checks one by one against real loopback servers and real video files: each failure names its cause."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import av
import numpy as np
import pytest

from agent.cli import doctor
from agent.health import checks, hostchecks
from agent.health.checks import CameraProbe
from tests.cli_tools.fakes import (
    OnvifDevice,
    RtspServer,
    closed_port,
    onvif_server,
    rtsp_server,
    silent_server,
)

PW = "cam-secret-Xy7"


def cam_for(device: OnvifDevice, *, password: str = PW, user: str = "admin") -> CameraProbe:
    return CameraProbe(name="cong", host="127.0.0.1", onvif_port=device.port, user=user, password=password,
                       timeout_s=2.0)


def test_doctor_reachable_closed_port_refused() -> None:
    """A closed port fails `reachable` with the refused wording and an ONVIF-port hint."""
    port = closed_port()
    r = checks.check_reachable(CameraProbe(name="x", host="127.0.0.1", onvif_port=port))
    _title, detail, hint = r.text()
    assert r.status == "fail" and "refused" in detail and str(port) in hint and "ONVIF" in hint


def test_doctor_reachable_rtsp_only_camera_uses_rtsp_port() -> None:
    """A camera given only by stream URL is reached on the URL's port, and the hint speaks of RTSP."""
    port = closed_port()
    r = checks.check_reachable(CameraProbe(name="x", rtsp_url=f"rtsp://u:p@127.0.0.1:{port}/s", onvif_port=None))
    assert r.status == "fail" and "RTSP" in r.text()[2]


def test_doctor_onvif_silent_server_times_out() -> None:
    """A port that accepts but never answers: reachable passes, ONVIF fails with the overloaded/booting hint."""
    with silent_server() as port:
        cam = CameraProbe(name="x", host="127.0.0.1", onvif_port=port, timeout_s=0.5)
        assert checks.check_reachable(cam).status == "pass"
        r = checks.check_onvif(cam)
    assert r.status == "fail" and "booting" in r.text()[2]


def test_doctor_onvif_soap_fault() -> None:
    """An HTTP server answering SOAP faults fails ONVIF with the fault text in the detail."""
    with onvif_server(OnvifDevice(mode="fault")) as dev:
        r = checks.check_onvif(cam_for(dev))
    assert r.status == "fail" and "ActionNotSupported" in r.text()[1]


def test_doctor_onvif_not_onvif_http() -> None:
    """An HTTP server without ONVIF (404) fails with the "answers HTTP but not ONVIF" hint."""
    with onvif_server(OnvifDevice(mode="http404")) as dev:
        r = checks.check_onvif(cam_for(dev))
    assert r.status == "fail" and "/onvif/device_service" in r.text()[2]


def test_doctor_full_onvif_path_passes() -> None:
    """A working camera: time, login (WS-Security digest verified), clock, stream URI and RTSP all pass."""
    with rtsp_server(RtspServer()) as rtsp, onvif_server(OnvifDevice(rtsp_url=RtspServer().url)) as dev:
        dev.rtsp_url = rtsp.url
        cam = cam_for(dev)
        results = [checks.check_reachable(cam), checks.check_onvif(cam), checks.check_credentials(cam),
                   checks.check_clock_offset(cam), checks.check_stream_uri(cam), checks.check_rtsp(cam)]
    assert [r.status for r in results] == ["pass"] * 6, [r.text() for r in results]
    assert "FakeCam FC-1" in results[2].text()[1]
    assert cam.stream_uri == rtsp.url
    assert dev.requests.count("GetProfiles") == 1


def test_doctor_wrong_password_hint() -> None:
    """A wrong password fails `credentials` with the factory-reset hint; the password is not in any text."""
    with onvif_server(OnvifDevice()) as dev:
        cam = cam_for(dev, password="wrong-pass-99")
        checks.check_onvif(cam)
        r = checks.check_credentials(cam)
    _title, detail, hint = r.text()
    assert r.status == "fail" and "factory" in hint and "NotAuthorized" in detail
    assert "wrong-pass-99" not in detail + hint and PW not in detail + hint


def test_doctor_clock_offset_reported() -> None:
    """A camera 10 minutes fast fails the clock check, and a wrong-clock login gets the clock hint."""
    with onvif_server(OnvifDevice(clock_offset_s=600)) as dev:
        cam = cam_for(dev, password="bad")
        assert checks.check_onvif(cam).status == "pass"
        clock = checks.check_clock_offset(cam)
        auth = checks.check_credentials(cam)
    assert clock.status == "fail" and 590 <= cam.offset_s <= 610  # type: ignore[operator]
    assert "NTP" in auth.text()[2]


def test_doctor_clock_offset_injected_now() -> None:
    """The offset is camera time minus our time, using the injected clock."""
    with onvif_server(OnvifDevice()) as dev:
        cam = cam_for(dev)
        checks.check_onvif(cam, now=lambda: dt.datetime.now(dt.UTC) - dt.timedelta(seconds=120))
    assert 115 <= cam.offset_s <= 125  # type: ignore[operator]


def test_doctor_stream_uri_with_invalid_port() -> None:
    """A camera advertising a stream address with port -1 fails "stream address" with a hint, not a crash."""
    with onvif_server(OnvifDevice(rtsp_url="rtsp://127.0.0.1:-1/stream2")) as dev:
        cam = cam_for(dev)
        checks.check_onvif(cam)
        r = checks.check_stream_uri(cam)
    assert r.status == "fail" and "invalid port" in r.text()[1] and "--camera-url" in r.text()[2]
    assert checks.check_rtsp(cam).status == "skip"


def test_doctor_rtsp_wrong_password_and_path() -> None:
    """RTSP 401 after the Digest challenge fails with the password hint; a wrong path with the 404 hint."""
    with rtsp_server(RtspServer()) as rtsp:
        bad = CameraProbe(name="x", rtsp_url=rtsp.url, onvif_port=None, user="admin", password="nope")
        bad.stream_uri = rtsp.url
        r401 = checks.check_rtsp(bad)
        wrong = CameraProbe(name="x", rtsp_url=rtsp.url + "x", onvif_port=None, user="admin", password=PW)
        wrong.stream_uri = rtsp.url.replace("stream2", "nothing")
        r404 = checks.check_rtsp(wrong)
    assert r401.status == "fail" and "401" in r401.text()[1] and "factory" in r401.text()[2]
    assert r404.status == "fail" and "404" in r404.text()[1]


def test_doctor_rtsp_credentials_from_url() -> None:
    """Credentials inside the URL are taken out of it and used for Digest; the URL kept has none."""
    with rtsp_server(RtspServer()) as rtsp:
        url = rtsp.url.replace("rtsp://", f"rtsp://admin:{PW}@")
        cam = CameraProbe(name="x", rtsp_url=url, onvif_port=None)
        assert PW not in (cam.rtsp_url or "") and PW not in repr(cam)
        assert checks.check_stream_uri(cam).status == "pass"
        assert checks.check_rtsp(cam).status == "pass"


def test_doctor_rtsp_silent_server_times_out() -> None:
    """An RTSP port that never answers fails with the overloaded/hung hint."""
    with silent_server() as port:
        cam = CameraProbe(name="x", rtsp_url=f"rtsp://127.0.0.1:{port}/s", onvif_port=None, timeout_s=0.5)
        cam.stream_uri = cam.rtsp_url
        r = checks.check_rtsp(cam)
    assert r.status == "fail" and "power-cycle" in r.text()[2]


# -- frames, image, motion: real decoding of small generated videos ---------------------------------------------
def write_video(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for f in frames:
            vf = av.VideoFrame.from_ndarray(np.dstack([f, f, f]), format="rgb24")
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def textured(h: int = 120, w: int = 160, shift: int = 0) -> np.ndarray:
    rng = np.random.default_rng(7)
    base = (rng.random((h, w)) * 160 + 40).astype(np.uint8)
    return np.roll(base, shift, axis=1)


@pytest.mark.parametrize(
    ("frames", "status", "word"),
    [
        ([textured(shift=i) for i in range(30)], "pass", "changes"),
        ([textured()] * 30, "fail", "frozen"),
        ([np.full((120, 160), 5, np.uint8)] * 30, "fail", "black"),
        ([np.full((120, 160), 128, np.uint8)] * 30, "fail", "flat"),
    ],
    ids=["live", "frozen", "black", "uniform"],
)
def test_doctor_frames_and_image(tmp_path: Path, frames: list[np.ndarray], status: str, word: str) -> None:
    """Frames decoded from a real file: a changing picture passes; frozen, black and flat pictures fail."""
    path = write_video(tmp_path / "v.mp4", frames)
    cam = CameraProbe(name="file", onvif_port=None)
    cam.stream_uri = str(path)
    frames_result, lumas = doctor.check_frames(cam, seconds=10)
    assert frames_result.status == "pass" and len(lumas) >= 2, frames_result.text()
    image = checks.check_image(lumas)
    assert image.status == status and word in image.text()[1]


def test_doctor_frames_unopenable_stream(tmp_path: Path) -> None:
    """A stream that cannot be opened fails `frames` with the decoder reason."""
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    cam = CameraProbe(name="file", onvif_port=None)
    cam.stream_uri = str(bad)
    r, lumas = doctor.check_frames(cam, seconds=2)
    assert r.status == "fail" and lumas == []


def test_doctor_motion_detector_sane_on_real_clip(shared_data: Path) -> None:
    """On frames of a real clip the detector is quiet on a still copy and sees the synthetic moving square."""
    cam = CameraProbe(name="clip", onvif_port=None)
    cam.stream_uri = str(shared_data / "parking-lot-768x432.mp4")
    r, lumas = doctor.check_frames(cam, seconds=2)
    assert r.status == "pass"
    m = doctor.check_motion(lumas)
    assert m.status == "pass", m.text()


def test_doctor_motion_skipped_without_frames() -> None:
    """No frames: the motion check is skipped, not failed."""
    assert doctor.check_motion([]).status == "skip"


# -- host -----------------------------------------------------------------------------------------------------------
def test_doctor_disk_low_and_ok(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Free space below 1 GiB fails with the clean-up hint; plenty passes."""
    assert hostchecks.check_disk(tmp_path).status == "pass"
    monkeypatch.setattr(hostchecks, "DISK_MIN_FREE_BYTES", 1 << 62)
    r = hostchecks.check_disk(tmp_path / "not-yet-created")
    assert r.status == "fail" and "vacuum" in r.text()[2]


def test_doctor_temperature_from_tree(tmp_path: Path) -> None:
    """A hot SoC (85 °C in a fake thermal tree) fails; no sensor is skipped, not failed."""
    z = tmp_path / "thermal_zone0"
    z.mkdir()
    (z / "type").write_text("cpu-thermal\n")
    (z / "temp").write_text("85000\n")
    assert hostchecks.check_temperature(tmp_path, use_psutil=False).status == "fail"
    (z / "temp").write_text("50000\n")
    assert hostchecks.check_temperature(tmp_path, use_psutil=False).status == "pass"
    assert hostchecks.check_temperature(tmp_path / "none", use_psutil=False).status == "skip"


def test_doctor_throttling_under_voltage(tmp_path: Path) -> None:
    """Under-voltage since boot (0x50000) fails with the power-supply hint; 0x0 passes; no tool skips."""
    exe = tmp_path / "vcgencmd"
    exe.write_text("#!/bin/sh\necho throttled=0x50000\n")
    exe.chmod(0o755)
    r = hostchecks.check_throttling(str(exe))
    assert r.status == "fail" and "5.1 V" in r.text()[2]
    exe.write_text("#!/bin/sh\necho throttled=0x0\n")
    assert hostchecks.check_throttling(str(exe)).status == "pass"
    assert hostchecks.check_throttling("").status == "skip"


@pytest.mark.parametrize(
    ("tool_output", "status"),
    [
        ({"timedatectl": "yes\n"}, "pass"),
        ({"timedatectl": "no\n"}, "fail"),
        ({"chronyc": "Reference ID : 1\nLeap status     : Normal\n"}, "pass"),
        ({"chronyc": "Leap status     : Not synchronised\n"}, "fail"),
        ({}, "skip"),
    ],
)
def test_doctor_clock_sync(tool_output: dict[str, str], status: str) -> None:
    """timedatectl first, then chrony; neither available is a skip with a note."""
    r = hostchecks.check_clock_sync(lambda argv: tool_output.get(argv[0]))
    assert r.status == status


def test_doctor_no_credentials_known_fails_with_login_hint() -> None:
    """With no user name known, a camera that demands a login fails (not skips) with the --user hint, over RTSP and
    over ONVIF; a camera with no address at all fails "IP reachable"."""
    with rtsp_server(RtspServer()) as rtsp:
        url_only = CameraProbe(name="x", rtsp_url=rtsp.url, onvif_port=None)
        assert checks.check_credentials(url_only).status == "skip"  # the RTSP step checks the login
        assert checks.check_stream_uri(url_only).status == "pass"
        r401 = checks.check_rtsp(url_only)
    with onvif_server(OnvifDevice()) as dev:
        cam = cam_for(dev)
        cam.user = cam.password = None
        checks.check_onvif(cam)
        auth = checks.check_credentials(cam)
    nowhere = checks.check_reachable(CameraProbe(name="x", onvif_port=80))
    assert r401.status == "fail" and "--user" in r401.text()[2] and "factory" not in r401.text()[2]
    assert auth.status == "fail" and "--user" in auth.text()[2]
    assert nowhere.status == "fail" and "discover" in nowhere.text()[2]
