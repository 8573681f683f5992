"""The state file: atomic replacement, read back, and plain words when it is missing, broken or stale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.health.statefile import (
    STATE_FILE_NAME,
    StateFileError,
    StateFileMissing,
    StateFileWriter,
    read_state,
)
from agent.models import CameraState, CameraStatus, DecodeMode, StatusReason

NOW = 1_800_000_000.0


def statuses() -> dict[str, CameraStatus]:
    return {
        "cong": CameraStatus("cong", CameraState.ONLINE, since=NOW - 60, last_frame_ts=NOW - 0.2, fps_in=10.0,
                             fps_analysed=5.0, decode_mode=DecodeMode.FULL),
        "cho": CameraStatus("cho", CameraState.OFFLINE, StatusReason.AUTH_FAILED, "password rejected",
                            since=NOW - 300),
    }


def test_statefile_round_trip(tmp_path: Path) -> None:
    """What the writer writes, the reader reads back, with last events and health stats per camera."""
    w = StateFileWriter(tmp_path, version="0.1.0", wall=lambda: NOW)
    health = {"host": {"temperature_c": 55.0}, "cameras": {"cong": {"events_1h": 3}}}
    w.write(statuses(), last_events={"cong": NOW - 5}, health=health)
    st = read_state(tmp_path)
    assert st.pid == os.getpid() and st.version == "0.1.0" and st.written_ts == NOW
    assert st.cameras["cong"]["state"] == "online" and st.cameras["cong"]["last_event_ts"] == NOW - 5
    assert st.cameras["cong"]["stats"] == {"events_1h": 3} and st.cameras["cong"]["decode_mode"] == "full"
    assert st.cameras["cho"]["reason"] == "auth_failed" and st.cameras["cho"]["last_event_ts"] is None
    assert st.health == health
    assert st.stale_reason(NOW + 1) is None


def test_statefile_atomic_no_temporaries_left(tmp_path: Path) -> None:
    """Many rewrites leave exactly one file and it is always complete JSON."""
    w = StateFileWriter(tmp_path, version="1", wall=lambda: NOW)
    for _ in range(20):
        w.write(statuses())
        json.loads((tmp_path / STATE_FILE_NAME).read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATE_FILE_NAME]
    assert (tmp_path / STATE_FILE_NAME).stat().st_mode & 0o777 == 0o644


def test_statefile_missing_says_not_running(tmp_path: Path) -> None:
    """No file: the error says the agent is not running."""
    with pytest.raises(StateFileMissing, match="not running"):
        read_state(tmp_path)


@pytest.mark.parametrize(
    ("content", "match"),
    [("{half", "not valid JSON"), ('{"schema": 99}', "unknown format"), ('{"schema": 1}', "missing a field")],
)
def test_statefile_broken_explained(tmp_path: Path, content: str, match: str) -> None:
    """A damaged or foreign file is refused with a message saying what to do."""
    (tmp_path / STATE_FILE_NAME).write_text(content)
    with pytest.raises(StateFileError, match=match):
        read_state(tmp_path)


def test_statefile_stale_by_age(tmp_path: Path) -> None:
    """A file older than three write intervals is stale, and the reason says how old."""
    StateFileWriter(tmp_path, version="1", interval_s=5, wall=lambda: NOW).write({})
    st = read_state(tmp_path)
    assert st.stale_reason(NOW + 14) is None
    reason = st.stale_reason(NOW + 100)
    assert reason is not None and "100 s ago" in reason


def test_statefile_stale_by_dead_pid(tmp_path: Path) -> None:
    """A file written by a process that has exited is stale even if recent."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    StateFileWriter(tmp_path, version="1", wall=lambda: NOW, pid=dead.pid).write({})
    reason = read_state(tmp_path).stale_reason(NOW)
    assert reason is not None and str(dead.pid) in reason and "not running" in reason


def test_statefile_remove_on_shutdown(tmp_path: Path) -> None:
    """A clean shutdown removes the file (twice is fine)."""
    w = StateFileWriter(tmp_path, version="1")
    w.write({})
    w.remove()
    w.remove()
    assert not (tmp_path / STATE_FILE_NAME).exists()
