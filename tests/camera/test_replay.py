"""`matthan-agent replay`: events and frames as JSON lines, settings from a config, and clear input errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.cli import main


def _replay(*args: str) -> tuple[int, list[dict], str]:
    proc = subprocess.run([sys.executable, "-m", "agent", "replay", *args], capture_output=True, text=True,
                          timeout=120)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc.returncode, lines, proc.stderr


def test_replay_jsonl_one_event_per_crossing(crossing_clip: Path) -> None:
    """Two crossings give two event lines with frame numbers and times, then a summary with timings."""
    rc, lines, _ = _replay(str(crossing_clip), "--jsonl")
    assert rc == 0
    events = [x for x in lines if x["type"] == "event"]
    assert len(events) == 2
    assert set(events[0]) >= {"id", "start_frame", "end_frame", "start_ts", "end_ts", "peak_score", "boxes"}
    assert 40 <= events[0]["start_frame"] <= 55 and 170 <= events[1]["start_frame"] <= 190
    assert events[0]["start_ts"] == pytest.approx(events[0]["start_frame"] / 15, abs=0.01)
    assert events[0]["boxes"] and len(events[0]["boxes"][0]) == 4
    summary = lines[-1]
    assert summary["type"] == "summary" and summary["frames"] == 300 and summary["events"] == 2
    assert summary["decode_ms_per_frame"] > 0 and summary["detect_ms_per_frame"] > 0


def test_replay_frames_lines_carry_final_decision(crossing_clip: Path) -> None:
    """--frames adds one line per analysed frame whose motion flag is the final decision."""
    rc, lines, _ = _replay(str(crossing_clip), "--jsonl", "--frames")
    frames = [x for x in lines if "frame" in x and x.get("type") == "frame"]
    assert rc == 0 and len(frames) == 300
    assert set(frames[0]) >= {"frame", "ts", "motion", "score"}
    assert not any(f["motion"] for f in frames if f["ts"] < 2.5)
    assert sum(f["motion"] for f in frames if 3.5 <= f["ts"] <= 6.5) >= 40


def test_replay_image_sequence_uses_fps(tmp_path: Path) -> None:
    """An image sequence pattern is replayed with timestamps on the --fps basis."""
    for i in range(1, 31):
        img = np.full((120, 160), 100, np.uint8)
        if 10 <= i <= 20:
            cv2.rectangle(img, (8 * (i - 10), 40), (8 * (i - 10) + 20, 70), 10, -1)
        cv2.imwrite(str(tmp_path / f"in{i:06d}.jpg"), img)
    rc, lines, _ = _replay(str(tmp_path / "in%06d.jpg"), "--fps", "2", "--jsonl", "--frames")
    assert rc == 0
    frames = [x for x in lines if x.get("type") == "frame"]
    assert frames[-1]["ts"] == pytest.approx(29 / 2)
    assert [x for x in lines if x["type"] == "event"]


def test_replay_text_output_is_readable(crossing_clip: Path) -> None:
    """Without --jsonl, events and the summary are plain text lines."""
    proc = subprocess.run([sys.executable, "-m", "agent", "replay", str(crossing_clip)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0
    assert proc.stdout.count("event ") == 2 and "300 frames" in proc.stdout


@pytest.mark.parametrize(
    ("make", "code", "words"),
    [
        (lambda d: d / "missing.mp4", 66, "no such file"),
        (lambda d: d / "frames" / "in%06d.jpg", 66, "does not exist"),
        (lambda d: d / "in%d_%d.jpg", 64, "%06d"),
        (lambda d: d, 64, "folder"),
    ],
)
def test_replay_bad_input_exits_nonzero_with_reason(tmp_path: Path, make, code: int, words: str, capsys) -> None:
    """Missing files, missing folders, bad patterns and folders give a clear message and a distinct exit code."""
    assert main(["replay", str(make(tmp_path))]) == code
    assert words in capsys.readouterr().err


def test_replay_garbage_file_is_data_error(tmp_path: Path, capsys) -> None:
    """A file that is not a video exits 65 and says it cannot be opened."""
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 500)
    assert main(["replay", str(junk)]) == 65
    assert "cannot open" in capsys.readouterr().err


def test_replay_config_camera_settings(crossing_clip: Path, tmp_path: Path) -> None:
    """--config/--camera apply the camera's masks and zones; an unknown camera exits 78 naming the known ones."""
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        "site_id: test-site\nmqtt:\n  host: 127.0.0.1\ncameras:\n"
        "  - name: cong-lang\n    url: rtsp://192.168.1.64/stream2\n"
        "    zones:\n      left: [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]\n"
        "  - name: cho\n    url: rtsp://192.168.1.65/stream2\n"
        "    masks:\n      - [[0, 0.3], [1, 0.3], [1, 0.7], [0, 0.7]]\n"
    )
    rc, lines, _ = _replay(str(crossing_clip), "--config", str(cfg), "--camera", "cong-lang", "--jsonl")
    events = [x for x in lines if x["type"] == "event"]
    assert rc == 0 and len(events) == 2 and all("left" in e["zones"] for e in events)
    rc, lines, _ = _replay(str(crossing_clip), "--config", str(cfg), "--camera", "cho", "--jsonl")
    assert rc == 0 and lines[-1]["events"] == 0  # the squares cross inside the mask
    rc, _, err = _replay(str(crossing_clip), "--config", str(cfg), "--camera", "nope")
    assert rc == 78 and "cong-lang" in err


@pytest.mark.parametrize("clip", ["traffic-osd-320x240.avi", "parking-lot-768x432.mp4", "scene-cuts-640x272.mp4",
                                  "corrupt-crashes-opencv.avi"])
def test_replay_shared_clips(shared_data: Path, clip: str) -> None:
    """Every real clip replays to the end without the process dying, and the busy ones produce events."""
    rc, lines, _ = _replay(str(shared_data / clip), "--jsonl")
    assert rc == 0
    summary = lines[-1]
    expected_frames = {"traffic-osd-320x240.avi": 748, "parking-lot-768x432.mp4": 377,
                       "corrupt-crashes-opencv.avi": 51}
    if clip in expected_frames:
        assert summary["frames"] == expected_frames[clip]
    if clip in ("traffic-osd-320x240.avi", "parking-lot-768x432.mp4"):
        assert summary["events"] >= 1


def test_replay_rtsp_until_interrupted(rtsp_server_for, crossing_clip: Path) -> None:
    """An RTSP URL is replayed live: frame lines stream out, and Ctrl-C ends it with the summary, exit 0."""
    import signal
    import time

    server = rtsp_server_for(crossing_clip)
    proc = subprocess.Popen([sys.executable, "-m", "agent", "replay", server.url(), "--jsonl", "--frames"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        frames, deadline = 0, time.monotonic() + 60
        assert proc.stdout is not None
        while frames < 20 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            frames += json.loads(line).get("type") == "frame"
        assert frames >= 20, "no live frames from the RTSP stream"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    summary = json.loads(out.splitlines()[-1])
    assert proc.returncode == 0, err
    assert summary["type"] == "summary" and summary["frames"] >= 20
    assert summary["source"].startswith("rtsp://127.0.0.1:")
