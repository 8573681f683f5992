"""The doctor against the project's simulated cameras (loopback mode): a healthy camera passes every step, and each
fault the simulator can inject makes the right step fail with its hint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from agent.cli import main
from agent.cli.doctor import check_frames
from agent.health import checks
from agent.health.checks import CameraProbe
from tests.rig.sim import running_cluster

pytestmark = pytest.mark.rtsp

CAMERAS = ["ok", "skewed", "wrongpw", "refusing", "gone", "frozen"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    scenario = ({
        "cameras": [{"name": n, **({"clock_skew_s": 600} if n == "skewed" else {})} for n in CAMERAS],
    })
    with running_cluster(scenario) as c:
        yield c


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("MATTHAN_CONFIG", str(tmp_path / "none.yaml"))
    monkeypatch.setenv("LANG", "C.UTF-8")


def doctor(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, info: Any,
           password: str | None = None) -> tuple[int, dict[str, dict[str, str]], str]:
    monkeypatch.setenv("SIM_PW", password if password is not None else info.password)
    rc = main(["doctor", "--onvif", f"{info.ip}:{info.onvif_port}", "--user", info.username,
               "--password-env", "SIM_PW", "--no-host", "--json", "--frames-seconds", "2", "--timeout", "3"])
    raw = capsys.readouterr().out
    doc = json.loads(raw)
    return rc, {c["name"]: c for c in doc["sections"][0]["checks"]}, raw


def test_doctor_sim_healthy_camera_passes(cluster: Any, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A healthy simulated camera passes all nine steps and the doctor exits 0; its password is never printed."""
    info = cluster.info("ok")
    rc, st, raw = doctor(capsys, monkeypatch, info)
    assert {k: v["status"] for k, v in st.items()} == dict.fromkeys(st, "pass"), st
    assert rc == 0 and info.password not in raw


def test_doctor_sim_clock_skew(cluster: Any, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A camera 10 minutes fast: the login still works (WS-Security stamped in the camera's time), the clock fails."""
    rc, st, _ = doctor(capsys, monkeypatch, cluster.info("skewed"))
    assert st["credentials"]["status"] == "pass" and st["clock_offset"]["status"] == "fail"
    assert "NTP" in st["clock_offset"]["hint"] and rc == 1


def test_doctor_sim_password_changed(cluster: Any, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """After the camera's password changed, the credentials step fails with the factory-reset hint."""
    old = cluster.info("wrongpw").password
    info = cluster.inject("wrongpw", "password_change", password="changed-by-reset-42")
    rc, st, raw = doctor(capsys, monkeypatch, info, password=old)
    assert st["credentials"]["status"] == "fail" and "factory" in st["credentials"]["hint"]
    assert rc == 1 and old not in raw and info.password not in raw


def test_doctor_sim_rtsp_refused(cluster: Any, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """RTSP refusing while ONVIF answers: ONVIF steps pass, "RTSP stream opens" fails with the refused hint."""
    info = cluster.inject("refusing", "rtsp_refuse")
    rc, st, _ = doctor(capsys, monkeypatch, info)
    assert st["onvif"]["status"] == "pass" and st["stream_uri"]["status"] == "pass"
    assert st["rtsp"]["status"] == "fail" and "refuses RTSP" in st["rtsp"]["hint"]
    assert st["frames"]["status"] == "skip" and rc == 1


def test_doctor_sim_camera_gone(cluster: Any, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A camera that disappeared fails the first step; the rest are skipped."""
    info = cluster.inject("gone", "gone")
    rc, st, _ = doctor(capsys, monkeypatch, info)
    assert st["reachable"]["status"] == "fail" and rc == 1
    assert all(v["status"] == "skip" for k, v in st.items() if k != "reachable")


def test_doctor_sim_frozen_picture(cluster: Any) -> None:
    """A frozen camera (same keyframe repeated) fails "image neither frozen nor black" with the power-cycle hint."""
    info = cluster.inject("frozen", "freeze")
    cam = CameraProbe(name="frozen", rtsp_url=info.rtsp_uri(with_credentials=True), onvif_port=None)
    cam.stream_uri = cam.rtsp_url
    # The simulator freezes on its next keyframe; read until a window lies wholly inside the frozen run.
    for _ in range(4):
        frames_result, lumas = check_frames(cam, seconds=2)
        assert frames_result.status == "pass"
        image = checks.check_image(lumas)
        if image.status == "fail":
            break
    assert image.status == "fail" and "frozen" in image.text()[1] and "Power-cycle" in image.text()[2]

