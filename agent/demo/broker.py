"""The demo's own Mosquitto: anonymous, on a free port of 127.0.0.1 in the namespace of the calling thread.

Never the machine's broker on 1883: the demo must not publish into whatever else runs here.
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from pathlib import Path

from agent.demo import procs

LISTEN_DEADLINE_S = 10.0  # a cold mosquitto start on a loaded Pi takes well under a second
STOP_GRACE_S = 5.0  # mosquitto exits at once on SIGTERM (no persistence here)
BIND_ATTEMPTS = 5  # a free port can be taken between our check and mosquitto's bind; try another


class BrokerError(RuntimeError):
    """Mosquitto is missing or would not start; the message says why and what to do."""


def free_port() -> int:
    """A TCP port nobody listens on right now on 127.0.0.1 (of this thread's namespace)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalBroker:
    """Start with `start()` from the thread whose namespace it should live in; `stop()` from any thread."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    def _write_config(self) -> Path:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join([
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"user {getpass.getuser()}",  # as root, mosquitto would switch to `mosquitto`, who cannot write here
            "persistence false",
            f"log_dest file {self.log_path}",
            "log_type error", "log_type warning", "log_type notice",
            "max_queued_messages 10000",
        ]) + "\n")
        return conf

    def start(self) -> int:
        """Start on a free port; return the port once mosquitto accepts connections."""
        exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
        if exe is None:
            raise BrokerError("mosquitto is not installed: run scripts/demo.sh as root once (it installs it), or "
                              "apt-get install mosquitto")
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(BIND_ATTEMPTS):
            self.port = free_port()
            self.proc = procs.spawn([exe, "-c", str(self._write_config())], log_path=self.workdir / "mosquitto.out")
            if self._wait_listening():
                return self.port
            self.stop()
            if "Address already in use" not in self._tail():
                break
        raise BrokerError(f"mosquitto did not start on 127.0.0.1:{self.port}: {self._tail()[-500:] or 'no output'}")

    def _tail(self) -> str:
        text = ""
        for p in (self.log_path, self.workdir / "mosquitto.out"):
            if p.exists():
                text += p.read_text(errors="replace")
        return text

    def _wait_listening(self) -> bool:
        deadline = time.monotonic() + LISTEN_DEADLINE_S
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)  # the port is not open yet; polled until the deadline
        return False

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop(self.proc, name="mosquitto", grace_s=STOP_GRACE_S)
