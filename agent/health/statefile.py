"""The running agent's state, written atomically to the state dir for `matthan-agent status` (no broker needed).

The daemon calls `StateFileWriter.write(...)` every few seconds and on every status change. The file is replaced
with write-to-temporary and rename, so a reader never sees half a file. A reader decides "stale" from the write
time and the writer's pid, and says so plainly.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.atomicfile import write_atomic
from agent.i18n import N_
from agent.models import CameraStatus

STATE_FILE_NAME = "agent-state.json"
SCHEMA = 1
DEFAULT_WRITE_INTERVAL_S = 5.0  # often enough that `status` is current; cheap (a few kB, one rename)
STALE_AFTER_INTERVALS = 3  # the file is stale when three writes in a row are missing


class StateFileError(Exception):
    """The state file cannot be used; the message says why in plain words."""


class StateFileMissing(StateFileError):
    """No state file: the agent is not running, or never ran with this state dir."""


def status_to_dict(status: CameraStatus) -> dict[str, Any]:
    return {
        "state": str(status.state),
        "reason": str(status.reason),
        "message": status.message,
        "since": status.since,
        "last_frame_ts": status.last_frame_ts,
        "fps_in": status.fps_in,
        "fps_analysed": status.fps_analysed,
        "decode_mode": str(status.decode_mode) if status.decode_mode else None,
    }


@dataclass(frozen=True, slots=True)
class AgentState:
    """What `status` reads back."""

    path: Path
    written_ts: float
    pid: int
    version: str
    started_ts: float
    interval_s: float
    cameras: dict[str, dict[str, Any]]
    health: dict[str, Any] | None
    extra: dict[str, Any]

    def age_s(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.written_ts

    def stale(self, now: float | None = None, *, check_pid: bool = True) -> tuple[str, dict[str, Any]] | None:
        """Why this state should not be trusted as live, as an English template and its parameters; None if fresh."""
        if check_pid and not pid_alive(self.pid):
            return N_("the agent (pid %(pid)d) is not running"), {"pid": self.pid}
        age = self.age_s(now)
        limit = STALE_AFTER_INTERVALS * self.interval_s
        if age > limit:
            return (N_("the state file was last written %(age).0f s ago (expected every %(interval).0f s)"),
                    {"age": age, "interval": self.interval_s})
        if age < -60:
            return N_("the state file is dated in the future (was the clock changed?)"), {}
        return None

    def stale_reason(self, now: float | None = None, *, check_pid: bool = True,
                     translate: Callable[[str], str] = lambda s: s) -> str | None:
        found = self.stale(now, check_pid=check_pid)
        if found is None:
            return None
        template, params = found
        return translate(template) % params if params else translate(template)


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by another user (the service user)
    return True


def atomic_write_json(path: Path, data: Mapping[str, Any], *, durable: bool = False) -> None:
    """Write JSON to `path` so that readers see the old or the new content, never a mix.

    `durable=False` (the state file) skips the fsyncs: the file is rewritten every few seconds and is worthless
    after a power cut (the agent is not running then), so there is no reason to wear the SD card for it; the
    rename alone keeps readers from ever seeing half a file."""
    data_bytes = json.dumps(data, ensure_ascii=False, indent=1, allow_nan=False, default=str).encode("utf-8")
    # 0644: readable by the technician's `status` without sudo; holds no secrets
    write_atomic(path, data_bytes, durable=durable, mode=0o644)


class StateFileWriter:
    """Owned by the daemon. `write()` takes the current statuses, last event times and the latest health sample."""

    def __init__(
        self,
        state_dir: Path,
        *,
        version: str,
        interval_s: float = DEFAULT_WRITE_INTERVAL_S,
        wall: Any = time.time,
        pid: int | None = None,
    ) -> None:
        self.path = Path(state_dir) / STATE_FILE_NAME
        self._version = version
        self._interval = interval_s
        self._wall = wall
        self._pid = os.getpid() if pid is None else pid
        self._started = wall()

    def write(
        self,
        statuses: Mapping[str, CameraStatus],
        *,
        last_events: Mapping[str, float] | None = None,
        health: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Replace the state file. `last_events`: camera → UTC epoch of its last motion event start.
        `health`: a JSON-able health sample (`metrics.sample_to_dict`). Never put credentials in `extra`."""
        last_events = last_events or {}
        cameras = {}
        for cam, status in sorted(statuses.items()):
            entry = status_to_dict(status)
            entry["last_event_ts"] = last_events.get(cam)
            if health and isinstance(health.get("cameras"), Mapping) and cam in health["cameras"]:
                entry["stats"] = health["cameras"][cam]
            cameras[cam] = entry
        atomic_write_json(
            self.path,
            {
                "schema": SCHEMA,
                "written_ts": self._wall(),
                "pid": self._pid,
                "version": self._version,
                "started_ts": self._started,
                "interval_s": self._interval,
                "cameras": cameras,
                "health": dict(health) if health else None,
                "extra": dict(extra or {}),
            },
        )

    def remove(self) -> None:
        """On clean shutdown: no file means "not running" to `status`, which is the truth."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def read_state(state_dir: Path) -> AgentState:
    """Read the state file; raises `StateFileMissing` or `StateFileError` with a message for the technician."""
    path = Path(state_dir) / STATE_FILE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        message = f"no state file at {path}: the agent is not running (or uses another state dir)"
        raise StateFileMissing(message) from None
    except OSError as exc:
        raise StateFileError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise StateFileError(f"{path} is not valid JSON (damaged?); restart the agent to rewrite it") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise StateFileError(f"{path} has an unknown format; is `matthan-agent` the same version as the service?")
    try:
        return AgentState(
            path=path,
            written_ts=float(data["written_ts"]),
            pid=int(data["pid"]),
            version=str(data["version"]),
            started_ts=float(data["started_ts"]),
            interval_s=float(data["interval_s"]),
            cameras=dict(data.get("cameras") or {}),
            health=data.get("health"),
            extra=dict(data.get("extra") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StateFileError(f"{path} is missing a field ({exc}); restart the agent to rewrite it") from None
