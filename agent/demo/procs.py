"""Child processes of the demo (the broker, the agent): started so they never outlive it, stopped politely.

Every child gets its own session (so a Ctrl-C in the terminal reaches only the demo, which then stops the agent
before the broker and the agent can still say `offline`), and PR_SET_PDEATHSIG, so the kernel signals it if the
demo dies without cleaning up. Linux ties that signal to the *thread* that started the child: the demo starts its
children from one long-lived thread (agent.demo.nsthread) that ends only after they are stopped.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def _die_with_parent_thread() -> None:
    """preexec: SIGTERM this child when the thread that started it ends (the demo died, even by SIGKILL)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(argv: Sequence[str], *, log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `argv` in a new session with stdout and stderr appended to `log_path`."""
    with open(log_path, "ab") as out:
        return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_die_with_parent_thread, env=env)


def stop(proc: subprocess.Popen[bytes], *, name: str, grace_s: float) -> int | None:
    """SIGTERM, wait up to `grace_s`, then SIGKILL. Also kills what is left of the child's process group (workers
    it spawned and did not reap). Returns the exit code (negative: killed by that signal)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            log.warning("%s (pid %d) still running %.0f s after SIGTERM; killing it", name, proc.pid, grace_s)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(5.0)
    # The child led its own process group (start_new_session): anything still in it is an orphan of ours.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode
