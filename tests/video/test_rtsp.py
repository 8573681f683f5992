"""RTSP sources against a loopback GStreamer server, and typed errors for refused, 401, 404, silent and stalled."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from agent.models import DecodeMode
from agent.video import AuthFailed, NotFound, OpenTimeout, Refused, SourceSettings, Stalled, open_source
from tests.video.conftest import free_port

pytestmark = pytest.mark.rtsp

FAST = SourceSettings(open_timeout_s=2.0, read_timeout_s=2.0, decode_mode=DecodeMode.FULL)


def test_rtsp_live_frames_stamped_with_wall_clock(rtsp_server_for, live_clip) -> None:
    """Live frames are stamped with the current UTC time and, after the start-up burst, spaced at the stream's pace."""
    server = rtsp_server_for(live_clip)
    source = open_source(server.url(), FAST)
    frames = source.frames()
    stamps = [next(frames).ts for _ in range(46)]
    frames.close()
    assert abs(stamps[0] - time.time()) < 5.0
    assert stamps[45] - stamps[15] == pytest.approx(2.0, abs=0.3)  # 30 frames at 15 fps
    assert all(b >= a for a, b in itertools.pairwise(stamps))


def test_rtsp_keyframe_mode_demuxes_all_decodes_keyframes(rtsp_server_for, live_clip) -> None:
    """In keyframe mode only keyframes (one per 2 s GOP) are decoded while every packet is still read."""
    server = rtsp_server_for(live_clip)
    source = open_source(server.url(), SourceSettings(decode_mode=DecodeMode.KEYFRAME))
    frames = source.frames()
    a, b = next(frames), next(frames)
    frames.close()
    assert a.keyframe and b.keyframe
    assert 1.2 <= b.ts - a.ts <= 2.5  # the first frame may be stamped up to the probe time late
    assert source.packets_in >= 25 and source.frames_decoded == 2


def test_rtsp_refused_is_typed() -> None:
    """Nobody listening on the port: Refused (rtsp_refused)."""
    with pytest.raises(Refused):
        next(open_source(f"rtsp://127.0.0.1:{free_port()}/cam", FAST).frames())


def test_rtsp_unknown_path_is_not_found(rtsp_server_for, live_clip) -> None:
    """A wrong stream path gives NotFound with a hint to check the URI."""
    server = rtsp_server_for(live_clip)
    with pytest.raises(NotFound, match="stream URI"):
        next(open_source(server.url("/wrong"), FAST).frames())


@pytest.fixture
def rtsp_401() -> Iterator[int]:
    """A server that answers every RTSP request with 401 (a camera whose password was changed)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def handle(conn: socket.socket) -> None:
        buf = b""
        with conn:
            while data := conn.recv(4096):
                buf += data
                while b"\r\n\r\n" in buf:
                    request, buf = buf.split(b"\r\n\r\n", 1)
                    cseq = next(line for line in request.decode().split("\r\n") if line.lower().startswith("cseq"))
                    conn.sendall(f'RTSP/1.0 401 Unauthorized\r\n{cseq}\r\nWWW-Authenticate: Basic realm="cam"\r\n\r\n'
                                 .encode())

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield port
    listener.close()


def test_rtsp_wrong_password_is_auth_failed_without_password(rtsp_401: int) -> None:
    """A 401 maps to AuthFailed, and the message does not contain the password."""
    with pytest.raises(AuthFailed) as exc:
        next(open_source(f"rtsp://admin:hunter2@127.0.0.1:{rtsp_401}/cam", FAST).frames())
    assert "hunter2" not in str(exc.value) and "***" in str(exc.value)


def test_rtsp_silent_server_is_open_timeout() -> None:
    """A server that accepts TCP but never answers gives OpenTimeout after the open timeout, not a hang."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(OpenTimeout):
            next(open_source(f"rtsp://127.0.0.1:{port}/cam", FAST).frames())
        assert time.monotonic() - started < FAST.open_timeout_s + 3


def test_rtsp_stalled_socket_is_stalled(rtsp_server_for, live_clip, fault_proxy) -> None:
    """A camera that stops sending but keeps the socket open raises Stalled after the read timeout."""
    proxy = fault_proxy(rtsp_server_for(live_clip).port)
    frames = open_source(proxy.url(), FAST).frames()
    next(frames)
    proxy.stall()
    started = time.monotonic()
    with pytest.raises(Stalled):
        for _ in frames:
            pass
    assert time.monotonic() - started < FAST.read_timeout_s + 5
