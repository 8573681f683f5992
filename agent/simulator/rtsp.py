"""Parent side of the RTSP host: start Debian's python3 running rtsp_host.py, and talk JSON lines to it.

The child dies with us: it stops when its stdin closes (our end of the pipe closes when we die, however we die),
and, when started from the main thread, it also gets SIGKILL through PR_SET_PDEATHSIG.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's interpreter: the one with PyGObject and GstRtspServer
HOST_SCRIPT = Path(__file__).with_name("rtsp_host.py")
REPLY_TIMEOUT_S = 20.0  # adding a camera loads its clips; on a busy 2-core machine that can take seconds
PR_SET_PDEATHSIG = 1


class RtspUnavailable(RuntimeError):
    """The GStreamer RTSP server cannot run here; the message says which Debian packages to install."""


class RtspHostError(RuntimeError):
    """The RTSP host refused a command or stopped answering."""


def rtsp_unavailable_reason() -> str | None:
    if not os.path.exists(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} is missing"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
                              "from gi.repository import GstRtspServer"],
        capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return ("the GStreamer RTSP server is not importable from /usr/bin/python3; install: apt-get install "
                "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
                "gstreamer1.0-plugins-bad")
    return None


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class RtspHost:
    """One child process serving every camera's RTSP; calls are serialised and each waits for the reply."""

    def __init__(self, *, netns: str | None = None) -> None:
        argv: Sequence[str] = [SYSTEM_PYTHON, "-u", str(HOST_SCRIPT)]
        if netns:
            argv = ["ip", "netns", "exec", netns, *argv]
        # PDEATHSIG fires when the *thread* that forked exits, so only use it from the long-lived main thread.
        preexec = _die_with_parent if threading.current_thread() is threading.main_thread() else None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                                     preexec_fn=preexec, env=env, start_new_session=True)
        self._lock = threading.Lock()
        first = self._read_reply()
        if not first.get("ready"):
            self.close()
            raise RtspHostError(f"RTSP host did not start: {first}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_reply(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RtspHostError(f"RTSP host (pid {self.proc.pid}) did not answer within {REPLY_TIMEOUT_S} s")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                line = self.proc.stdout.readline()
                if not line:
                    raise RtspHostError(f"RTSP host (pid {self.proc.pid}) exited with {self.proc.poll()}")
                return json.loads(line)

    def command(self, **cmd: Any) -> dict[str, Any]:
        with self._lock:
            if self.proc.poll() is not None:
                raise RtspHostError(f"RTSP host exited with {self.proc.returncode}")
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
            reply = self._read_reply()
        if "error" in reply:
            raise RtspHostError(f"RTSP host: {reply['error']}")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                if self.proc.stdin:
                    self.proc.stdin.close()  # the host quits on end of input
                self.proc.wait(timeout=5)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
        if self.proc.stdout:
            self.proc.stdout.close()
