"""The agent's whole native stack runs under the unit's seccomp restrictions (emulated, see sandbox.py).

`systemd-analyze security` scores the unit but cannot say whether the agent still works inside it; a too-tight
SystemCallFilter= or MemoryDenyWriteExecute= would only show on a Pi, as a daemon that dies at start. These
tests load the same restrictions with libseccomp and run a probe of everything the agent does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "matthan-agent.service"
SANDBOX = REPO / "tests" / "install" / "sandbox.py"
SYSTEM_PYTHON = "/usr/bin/python3"  # libseccomp's binding is a Debian package for the system interpreter


def _sandbox_available() -> str | None:
    if shutil.which("systemd-analyze") is None:
        return "systemd-analyze is not installed (Debian package: systemd)"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import seccomp"], capture_output=True)
    if probe.returncode != 0:
        return "libseccomp's Python binding is missing (Debian package: python3-seccomp)"
    return None


pytestmark = pytest.mark.skipif(_sandbox_available() is not None, reason=str(_sandbox_available()))


def _in_sandbox(*command: str) -> subprocess.CompletedProcess[str]:
    prefix: list[str] = []
    if os.geteuid() == 0 and shutil.which("setpriv"):
        prefix = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"]  # CapabilityBoundingSet= (empty)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([*prefix, SYSTEM_PYTHON, str(SANDBOX), str(UNIT), "--", *command], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=240)


def test_sandbox_runs_the_agent_stack() -> None:
    """Video encode/decode, OpenCV, SQLite WAL, psutil, sockets and a spawned worker pool all work inside."""
    out = _in_sandbox(sys.executable, "-m", "tests.install.sandbox_probe")
    assert out.returncode == 0 and "SANDBOX-OK" in out.stdout, out.stdout + out.stderr


def test_sandbox_really_restricts() -> None:
    """Control: inside, W+X memory, packet sockets and raising priority are refused, so the probe means something."""
    script = (
        "import mmap, os, socket\n"
        "refused = []\n"
        "try: mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
        "except OSError: refused.append('wx')\n"
        "try: socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n"
        "except OSError: refused.append('packet')\n"
        "try: os.setpriority(os.PRIO_PROCESS, 0, 1)\n"
        "except OSError: refused.append('priority')\n"
        "print(','.join(refused))\n"
    )
    out = _in_sandbox(sys.executable, "-c", script)
    assert out.returncode == 0 and out.stdout.strip() == "wx,packet,priority", out.stdout + out.stderr
