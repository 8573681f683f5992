"""`matthan-agent snapshot`: one fresh JPEG from a URL, a file or a configured camera, with clear failures."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import cv2
import pytest


def agent(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """A short synthetic H.264 clip rendered here (runs on a fresh clone without the shared data)."""
    import av
    import numpy as np

    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(10):
            img = np.full((240, 320, 3), 40 + 10 * i, np.uint8)
            img[100:140, 20 * i:20 * i + 40] = 230
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_snapshot_from_file_writes_a_jpeg(clip: Path, tmp_path: Path) -> None:
    """A video file gives a JPEG that decodes to the clip's size."""
    out = tmp_path / "pic.jpg"
    result = agent("snapshot", str(clip), "-o", str(out))
    assert result.returncode == 0, result.stderr
    image = cv2.imread(str(out))
    assert image is not None and image.shape[:2] == (240, 320)


def test_snapshot_configured_camera_by_name(clip: Path, tmp_path: Path) -> None:
    """A camera name from the configuration resolves to its url."""
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"site_id: xa\nmqtt: {{host: 127.0.0.1}}\nstorage: {{state_dir: {tmp_path / 'state'}}}\n"
                   f"cameras:\n  - name: cho\n    url: file://{clip}\n")
    result = agent("--config", str(cfg), "snapshot", "cho", "-o", str(tmp_path / "cho.jpg"))
    assert result.returncode == 0, result.stderr
    assert cv2.imread(str(tmp_path / "cho.jpg")) is not None


def test_snapshot_unknown_camera_name_is_usage_error(tmp_path: Path) -> None:
    """A name that is neither configured nor discovered exits 64 and says how to find cameras."""
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"site_id: xa\nmqtt: {{host: 127.0.0.1}}\nstorage: {{state_dir: {tmp_path / 'state'}}}\n")
    result = agent("--config", str(cfg), "snapshot", "khong-co")
    assert result.returncode == 64
    assert "khong-co" in result.stderr and "discover" in result.stderr


def test_snapshot_missing_file_fails_without_config(tmp_path: Path) -> None:
    """A path that does not exist is reported as such, not looked up as a camera name."""
    result = agent("snapshot", str(tmp_path / "none.mp4"))
    assert result.returncode == 69
    assert "none.mp4" in result.stderr


def test_snapshot_refused_rtsp_names_reason_and_hides_password() -> None:
    """A closed RTSP port exits 69 with the reason, and the password never appears."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once the socket is closed
    result = agent("snapshot", f"rtsp://127.0.0.1:{port}/live", "--user", "admin", "--password", "Bi-Mat-42",
                   "--timeout", "5")
    assert result.returncode == 69
    assert "rtsp_refused" in result.stderr
    assert "Bi-Mat-42" not in result.stderr + result.stdout


@pytest.mark.parametrize(("stream", "want_http"), [("auto", False), ("snapshot", True)])
def test_snapshot_discovered_camera_follows_stream_choice(tmp_path: Path, stream: str, want_http: bool) -> None:
    """A discovered camera set to `stream: snapshot` is grabbed from its ONVIF snapshot URI, else from its stream."""
    from agent.cli.snapshot import _resolve_name
    from agent.discovery.inventory import Inventory
    from agent.models import CameraInfo

    state = tmp_path / "state"
    state.mkdir()
    inventory = Inventory(state / "inventory.json")
    inventory.update(CameraInfo(camera_id="", endpoint_uuid="urn:uuid:1", ip="127.0.0.1", name="cho",
                                stream_uri="rtsp://127.0.0.1:8554/sub", snapshot_uri="http://127.0.0.1:8080/snap.jpg",
                                auth="ok"), configured_name="cho")
    inventory.save()
    config = tmp_path / "agent.yaml"
    config.write_text(f"site_id: xa\nmqtt: {{host: 127.0.0.1}}\nstorage:\n  state_dir: {state}\n"
                      f"cameras:\n  - name: cho\n    stream: {stream}\n")
    uri, http = _resolve_name("cho", str(config))
    assert http is want_http
    assert uri.startswith("http://127.0.0.1:8080/snap.jpg" if want_http else "rtsp://127.0.0.1:8554/sub")
