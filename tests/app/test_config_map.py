"""From configuration (and discovery inventory) to camera jobs: which source each camera gets, and with what."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from agent.app.cameras import NO_SNAPSHOT_URI, configured_cameras, discovered_camera, jobs_for
from agent.app.config_map import pipeline_settings, threshold_for
from agent.config import AgentConfig, effective_camera, validate_data
from agent.models import CameraInfo, StatusReason

AGENT = Path(__file__).resolve().parents[2] / "agent"
INFO = CameraInfo(
    camera_id="cau-tre", ip="192.168.1.72", xaddr="http://192.168.1.72/onvif/device_service",
    stream_uri="rtsp://192.168.1.72:554/Streaming/Channels/102",
    snapshot_uri="http://192.168.1.72/onvif/snapshot.jpg?channel=1", auth="ok",
)


def make(cameras: list[dict[str, object]], **overrides: object) -> AgentConfig:
    data: dict[str, object] = {"site_id": "xa-tan-phu", "agent_id": "pi-test", "mqtt": {"host": "127.0.0.1"},
                               "cameras": cameras}
    data.update(overrides)
    return validate_data(data)


def test_config_map_configured_snapshot_key_picks_snapshot_source(tmp_path: Path) -> None:
    """`stream: snapshot` on a url camera gives a polling job at the configured interval, credentials inside."""
    cfg = make([{"name": "cau-tre", "url": "http://192.168.1.72/cgi-bin/fetch", "stream": "snapshot",
                 "snapshot_interval_s": 2.5, "credentials": {"username": "admin", "password": "p@ss"}}])
    (job,) = jobs_for(cfg, configured_cameras(cfg), state_dir=tmp_path)
    assert job.pipeline.snapshot is True
    assert job.pipeline.source.snapshot_interval_s == 2.5
    assert job.pipeline.uri == "http://admin:p%40ss@192.168.1.72/cgi-bin/fetch"


@pytest.mark.parametrize(("url", "stream", "snapshot"), [
    ("rtsp://192.168.1.70:554/stream2", None, False),
    ("http://192.168.1.70/cgi-bin/mjpeg", None, False),  # an HTTP video stream stays a stream under auto
    ("http://192.168.1.70/snapshot.jpg", None, True),  # auto keeps polling URLs that are plainly pictures
    ("http://192.168.1.70/snapshot.jpg", "main", False),  # an explicit stream choice beats the URL's look
    ("https://192.168.1.70/cgi-bin/mjpeg", "snapshot", True),
])
def test_config_map_configured_url_source(url: str, stream: str | None, snapshot: bool) -> None:
    """The `stream` key decides; with auto, only an http(s) URL that looks like a picture is polled."""
    entry: dict[str, object] = {"name": "nga-ba", "url": url}
    if stream is not None:
        entry["stream"] = stream
    (cam,) = configured_cameras(make([entry]))
    assert cam.snapshot is snapshot


def test_config_map_discovered_snapshot_uses_onvif_snapshot_uri(tmp_path: Path) -> None:
    """A discovered camera whose entry says `stream: snapshot` polls the inventory's snapshot URI, with credentials."""
    cfg = make([{"ip": "192.168.1.72", "stream": "snapshot", "credentials": {"username": "admin", "password": "x1"}}])
    cam = discovered_camera(cfg, INFO, credential_user="admin", ok=True)
    (job,) = jobs_for(cfg, [cam], state_dir=tmp_path)
    assert job.pipeline.snapshot is True
    assert job.pipeline.uri == "http://admin:x1@192.168.1.72/onvif/snapshot.jpg?channel=1"
    assert job.pipeline.source.snapshot_interval_s == 1.0  # motion's default


def test_config_map_discovered_default_streams_rtsp() -> None:
    """Without the key a discovered camera streams its ONVIF RTSP URI; the motion default applies to every camera."""
    cam = discovered_camera(make([]), INFO, credential_user=None, ok=True)
    assert cam.snapshot is False and cam.uri == INFO.stream_uri
    everyone = discovered_camera(make([], motion={"stream": "snapshot"}), INFO, credential_user=None, ok=True)
    assert everyone.snapshot is True and everyone.uri == INFO.snapshot_uri


def test_config_map_discovered_snapshot_without_uri_is_not_runnable() -> None:
    """A camera that gave no snapshot URI cannot be polled: it is shown offline with a reason, not streamed."""
    from dataclasses import replace

    cfg = make([{"ip": "192.168.1.72", "stream": "snapshot"}])
    cam = discovered_camera(cfg, replace(INFO, snapshot_uri=None), credential_user=None, ok=True)
    assert not cam.runnable and cam.uri is None
    assert cam.problem == NO_SNAPSHOT_URI and cam.reason is StatusReason.ONVIF_ERROR


def test_config_map_pipeline_settings_maps_tunables() -> None:
    """Sensitivity becomes a pixel threshold; analysis rate, decode mode and poll interval reach the source."""
    cfg = make([], motion={"sensitivity": 1.0, "analysis_fps": 3, "decode_mode": "keyframe",
                           "snapshot_interval_s": 0.5})
    settings = pipeline_settings(effective_camera(cfg, None, name="cho"), camera_id="cho", uri="x.mp4")
    assert settings.motion.threshold == threshold_for(1.0) == 4 and threshold_for(0.0) == 32
    assert (settings.source.analysis_fps, str(settings.source.decode_mode)) == (3, "keyframe")
    assert settings.source.snapshot_interval_s == 0.5 and settings.snapshot is False


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize(("target", "allowed"), [
    ("agent.config", {"app", "cli", "demo", "config"}),
    ("agent.simulator", {"cli", "demo", "simulator"}),
])
def test_import_rules_config_and_simulator(target: str, allowed: set[str]) -> None:
    """docs/architecture.md "Rules kept": only the composition roots import config and the simulator."""
    offenders = sorted(
        str(path.relative_to(AGENT))
        for path in AGENT.rglob("*.py")
        if path.relative_to(AGENT).parts[0].removesuffix(".py") not in allowed
        and any(m == target or m.startswith(target + ".") for m in _imports(path))
    )
    assert offenders == []
