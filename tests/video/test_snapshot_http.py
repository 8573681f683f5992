"""HTTP snapshot polling against a loopback HTTP server: frames, Basic auth, and typed failures."""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from agent.models import StatusReason
from agent.video import AuthFailed, DecodeError, Refused, SourceSettings, open_source
from tests.video.conftest import free_port

USER, PASSWORD = "admin", "hunter2"


@pytest.fixture
def snapshot_server() -> Iterator[int]:
    """Serves /snap.jpg (Basic auth admin:hunter2) and /junk.jpg (not an image)."""
    jpeg = cv2.imencode(".jpg", np.full((90, 160, 3), (20, 120, 220), np.uint8))[1].tobytes()
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="cam"')
                self.end_headers()
                return
            body = jpeg if self.path == "/snap.jpg" else b"not a jpeg"
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_snapshot_polls_frames_with_credentials(snapshot_server: int) -> None:
    """Polling with credentials in the URL yields grey frames and keeps the colour picture for snapshots."""
    stop = threading.Event()
    source = open_source(f"http://{USER}:{PASSWORD}@127.0.0.1:{snapshot_server}/snap.jpg",
                         SourceSettings(snapshot_interval_s=0.05), snapshot=True)
    frames = source.frames(stop)
    a, b = next(frames), next(frames)
    stop.set()
    assert a.y.shape == (90, 160) and b.index == 1
    assert a.bgr().shape == (90, 160, 3)
    assert PASSWORD not in source.describe()


def test_snapshot_wrong_password_is_auth_failed(snapshot_server: int) -> None:
    """A 401 is AuthFailed, with the password masked."""
    with pytest.raises(AuthFailed) as exc:
        next(open_source(f"http://{USER}:wrong@127.0.0.1:{snapshot_server}/snap.jpg", snapshot=True).frames())
    assert "wrong" not in str(exc.value)


def test_snapshot_not_an_image_is_decode_error(snapshot_server: int) -> None:
    """A 200 response that is not an image is a DecodeError."""
    with pytest.raises(DecodeError):
        next(open_source(f"http://{USER}:{PASSWORD}@127.0.0.1:{snapshot_server}/junk.jpg", snapshot=True).frames())


def test_snapshot_refused_is_unreachable() -> None:
    """Nobody listening: a refused connection, reported as unreachable (the camera's web server is down)."""
    with pytest.raises(Refused) as exc:
        next(open_source(f"http://127.0.0.1:{free_port()}/snap.jpg", snapshot=True).frames())
    assert exc.value.reason == StatusReason.UNREACHABLE
