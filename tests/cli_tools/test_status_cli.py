"""`matthan-agent status`: reads the state file, prints cameras and health, and is honest when the agent is down."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.cli import main
from agent.cli.status import ago, render
from agent.health.board import StatusBoard
from agent.health.metrics import HealthCollector, HostPaths, sample_to_dict
from agent.health.statefile import StateFileWriter, read_state
from agent.i18n import translator
from agent.models import CameraReport, DecodeMode, StatusReason

pytestmark = pytest.mark.usefixtures("english_no_config")


def write_state(state_dir: Path, *, pid: int | None = None, wall: float | None = None) -> None:
    board = StatusBoard()
    now = time.time()
    board.observe(CameraReport("cho", now, True, fps_in=12.0, fps_analysed=5.0, last_frame_ts=now - 0.3,
                               last_frame_age_s=0.3, luma_std=30.0, decode_mode=DecodeMode.ADAPTIVE, events=2))
    board.observe(CameraReport("cong-lang", now, False, error=StatusReason.AUTH_FAILED,
                               error_message="401 from 192.168.1.64"))
    collector = HealthCollector(version="0.1.0", state_dir=state_dir,
                                paths=HostPaths(thermal_dir=state_dir / "none", wireless=state_dir / "none",
                                                vcgencmd="", use_psutil_sensors=False))
    for r in board.reports().values():
        collector.observe(r)
    health = sample_to_dict(collector.sample(statuses=board.snapshot(), reports=board.reports(),
                                             outbox={"depth": 7, "dead_letters": 0}))
    writer = StateFileWriter(state_dir, version="0.1.0", pid=pid, wall=(lambda: wall) if wall else time.time)
    extra = {"site_id": "xa-thu", "agent_id": "pi-01", "broker_connected": False,
             "cameras": {"cho": {"ip": "192.168.1.64", "problem": None},
                         "cong-lang": {"ip": "192.168.1.65", "problem": "no credentials accepted"}}}
    writer.write(board.snapshot(), last_events={"cho": now - 42}, health=health, extra=extra)


def test_status_cli_not_running(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """No state file: exit 3 and a plain sentence with how to start the service."""
    rc = main(["status", "--state-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 3 and "not running" in out and "systemctl start matthan-agent" in out


def test_status_cli_table_and_health(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A fresh state file: exit 0, one row per camera with state, reason, fps and last event, then health."""
    write_state(tmp_path)
    rc = main(["status", "--state-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    row = next(line for line in out.splitlines() if line.startswith("cho "))
    assert "online" in row and "12.0/5.0" in row and "42 s ago" in row and "192.168.1.64" in row
    assert "cong-lang: camera rejected the user name or password (401 from 192.168.1.64)" in out
    assert "no credentials accepted" in out and "Site xa-thu, agent pi-01" in out
    assert "Station broker: NOT connected" in out
    assert "temperature: no sensor" in out and "depth=7" in out and "WARNING" not in out


def test_status_cli_stale_dead_pid(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A state file left by a dead agent: the table is shown with a warning, exit 3."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_state(tmp_path, pid=dead.pid)
    rc = main(["status", "--state-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 3 and "WARNING: this is old information" in out and str(dead.pid) in out


def test_status_cli_stale_old_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A file not rewritten for minutes is stale even if the pid is alive."""
    write_state(tmp_path, wall=time.time() - 600)
    rc = main(["status", "--state-dir", str(tmp_path), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 3 and doc["running"] is False and "last written" in doc["problem"]


def test_status_cli_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--json carries the cameras and the health sample for machines."""
    write_state(tmp_path)
    rc = main(["status", "--state-dir", str(tmp_path), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["running"] is True
    assert doc["cameras"]["cong-lang"]["reason"] == "auth_failed"
    assert doc["cameras"]["cho"]["stats"]["events_1h"] == 2
    assert doc["health"]["outbox"]["depth"] == 7 and doc["agent"]["broker_connected"] is False


def test_status_cli_broken_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A damaged state file is exit 1 with what to do."""
    (tmp_path / "agent-state.json").write_text("{")
    assert main(["status", "--state-dir", str(tmp_path)]) == 1
    assert "restart the agent" in capsys.readouterr().err


def test_status_cli_state_dir_from_config(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    """Without --state-dir, the config's storage.state_dir is used."""
    state = tmp_path / "state"
    write_state(state)
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"site_id: xa-thu\nmqtt:\n  host: 127.0.0.1\nstorage:\n  state_dir: {state}\n")
    monkeypatch.setenv("MATTHAN_CONFIG", str(cfg))
    assert main(["status"]) == 0
    assert "cong-lang" in capsys.readouterr().out


def test_status_cli_vietnamese(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                               tmp_path: Path) -> None:
    """With LANGUAGE=vi the headings, states and reason messages are Vietnamese."""
    monkeypatch.setenv("LANGUAGE", "vi")
    write_state(tmp_path)
    assert main(["status", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "TRẠNG THÁI" in out and "mất kết nối" in out and "camera từ chối tên đăng nhập" in out


def test_status_ago_units() -> None:
    """Ages read naturally in seconds, minutes, hours and days."""
    _ = translator("en").gettext
    assert [ago(s, _) for s in (None, 5, 600, 7200, 200000)] == ["-", "5 s ago", "10 min ago", "2 h ago",
                                                                   "2 days ago"]


def test_status_render_no_cameras_no_health(tmp_path: Path) -> None:
    """An agent with no camera yet and no health sample says so instead of printing an empty table."""
    StateFileWriter(tmp_path, version="1").write({})
    text = render(read_state(tmp_path), time.time(), translator("en").gettext)
    assert "No cameras yet" in text and "no sample yet" in text
