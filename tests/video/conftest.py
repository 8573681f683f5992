"""Fixtures for sources: rendered clips, a loopback GStreamer RTSP server, and a TCP proxy that injects faults."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.video.clips import render

SERVER = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def crossing_clip(clip_dir: Path) -> Path:
    """20 s, 15 fps, 2 s GOP, squares crossing at 3-7 s and 12-16 s."""
    return render(clip_dir / "crossing.mp4", 20.0, crossings=((3.0, 7.0), (12.0, 16.0)))


@pytest.fixture(scope="session")
def live_clip(clip_dir: Path) -> Path:
    """A 120 s quiet clip for the RTSP server (each client reads it from the start)."""
    return render(clip_dir / "live.mp4", 120.0, crossings=((3.0, 7.0),))


@pytest.fixture(scope="session")
def frozen_clip(clip_dir: Path) -> Path:
    """60 s whose picture stops changing after 2 s (a hung camera that keeps streaming)."""
    return render(clip_dir / "frozen.mp4", 60.0, frozen_after=2.0)


@pytest.fixture(scope="session")
def thawing_clip(clip_dir: Path) -> Path:
    """60 s whose picture is frozen from 2 s to 20 s, then live again (a camera that recovers by itself)."""
    return render(clip_dir / "thawing.mp4", 60.0, frozen_after=2.0, frozen_until=20.0)


class RtspServer:
    """The GStreamer RTSP server in a child process (Debian's python3 has PyGObject)."""

    def __init__(self, clip: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER), str(clip), "--port", str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("READY"):
            self.stop()
            raise RuntimeError(f"RTSP server did not start: {line!r}")

    def url(self, path: str = "/cam") -> str:
        return f"rtsp://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _rtsp_available() -> str | None:
    if not os.path.exists(SYSTEM_PYTHON) or shutil.which("gst-inspect-1.0") is None:
        return "GStreamer RTSP server not installed"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
                           capture_output=True)
    return None if probe.returncode == 0 else "python3-gi / gir1.2-gst-rtsp-server-1.0 missing"


@pytest.fixture
def rtsp_server_for():
    """Factory: start an RTSP server for a clip; all are stopped at teardown."""
    reason = _rtsp_available()
    if reason:
        pytest.skip(reason)
    servers: list[RtspServer] = []

    def start(clip: Path) -> RtspServer:
        server = RtspServer(clip)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class FaultProxy:
    """A loopback TCP proxy in front of a server: `stall()` stops forwarding (sockets stay open), `refuse()`
    closes the listener and every connection, `heal()` goes back to normal (on the same port)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._stalled = threading.Event()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.heal()

    def url(self, path: str = "/cam") -> str:
        return f"rtsp://127.0.0.1:{self.port}{path}"

    def heal(self) -> None:
        self._stalled.clear()
        if self._listener is None:
            self._listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
            self._listener.settimeout(0.2)
            self._stop.clear()
            self._thread = threading.Thread(target=self._accept, args=(self._listener,), daemon=True)
            self._thread.start()

    def stall(self) -> None:
        self._stalled.set()

    def refuse(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._listener is not None:
            self._listener.close()
        self._listener = None
        with self._lock:
            for c in self._conns:
                with contextlib.suppress(OSError):
                    c.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self._stop.is_set():
                if self._stalled.is_set():
                    self._stop.wait(0.05)  # hold everything: the camera "hangs" with its socket open
                    continue
                readable, _, _ = select.select([a, b], [], [], 0.1)
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        return
                    peers[s].sendall(data)
        except OSError:
            return
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()

    def close(self) -> None:
        self.refuse()


@pytest.fixture
def fault_proxy() -> Iterator:
    proxies: list[FaultProxy] = []

    def make(target_port: int) -> FaultProxy:
        proxy = FaultProxy(target_port)
        proxies.append(proxy)
        return proxy

    yield make
    for p in proxies:
        p.close()
