"""The doctor's stream steps against a real RTSP server on loopback (GStreamer, from the video tests)."""

from __future__ import annotations

import json

import pytest

from agent.cli import main

pytestmark = pytest.mark.rtsp


@pytest.fixture(autouse=True)
def _no_config(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MATTHAN_CONFIG", str(tmp_path / "none.yaml"))
    monkeypatch.setenv("LANG", "C.UTF-8")


def test_doctor_rtsp_live_stream_all_pass(capsys: pytest.CaptureFixture[str], rtsp_server_for, live_clip) -> None:
    """A live stream: reachable, RTSP opens, frames arrive, the picture lives, the detector is sane; exit 0."""
    server = rtsp_server_for(live_clip)
    rc = main(["doctor", "--camera-url", server.url(), "--no-host", "--json", "--frames-seconds", "3"])
    doc = json.loads(capsys.readouterr().out)
    st = {c["name"]: c["status"] for c in doc["sections"][0]["checks"]}
    assert st == {"reachable": "pass", "onvif": "skip", "credentials": "skip", "clock_offset": "skip",
                  "stream_uri": "pass", "rtsp": "pass", "frames": "pass", "image": "pass", "motion": "pass"}, doc
    assert rc == 0


def test_doctor_rtsp_wrong_path(capsys: pytest.CaptureFixture[str], rtsp_server_for, live_clip) -> None:
    """A wrong stream path fails at "RTSP stream opens" with the 404 hint; frames are then skipped."""
    server = rtsp_server_for(live_clip)
    rc = main(["doctor", "--camera-url", server.url("/nothing"), "--no-host", "--json"])
    doc = json.loads(capsys.readouterr().out)
    checks = {c["name"]: c for c in doc["sections"][0]["checks"]}
    assert rc == 1 and checks["rtsp"]["status"] == "fail" and "404" in checks["rtsp"]["detail"]
    assert checks["frames"]["status"] == "skip"
