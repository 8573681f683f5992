"""`matthan-agent demo` end to end: a subprocess with its own broker, simulated cameras and agent.

What a newcomer sees: every camera online, motion events with snapshot JPEGs saved by the console, a summary, and
nothing left running afterwards (no process, no namespace).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
import yaml

from agent.demo.scenario import camera_names
from tests.demo.run import DemoRun, namespaces_of

pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.rtsp, pytest.mark.slow]

DURATION_S = 45  # cameras are online ~12 s after the agent starts, and every camera sees a crossing each 30 s
START_DEADLINE_S = 180  # a cold first run encodes the village scenes (~40 s on 2 busy cores) before the clock starts


@pytest.fixture(autouse=True)
def _needs_tools() -> None:
    from agent.simulator.rtsp import rtsp_unavailable_reason

    if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        pytest.skip("mosquitto not installed (apt-get install mosquitto)")
    reason = rtsp_unavailable_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def runs() -> Iterator[list[DemoRun]]:
    made: list[DemoRun] = []
    try:
        yield made
    finally:
        for run in made:
            run.kill()


def _check_snapshots(run: DemoRun) -> list[Path]:
    snaps = run.snapshots()
    assert snaps, f"no motion event with a snapshot:\n{run.text}"
    for path in snaps:
        assert path.is_file() and path.parent == run.dir / "snapshots", path
    image = cv2.imread(str(snaps[0]))
    assert image is not None and image.shape[0] > 0, f"{snaps[0]} does not decode as an image"
    return snaps


def _check_nothing_left(run: DemoRun) -> None:
    assert len(run.reported_pids()) >= 3, f"the demo did not report its pids:\n{run.text}"
    assert run.seen, "no child process was ever sampled"
    assert run.survivors() == []
    assert namespaces_of(run.proc.pid) == []


@pytest.mark.netns
def test_demo_namespace_mode_shows_cameras_events_and_leaves_nothing(tmp_path: Path,
                                                                     runs: list[DemoRun]) -> None:
    """--duration --plain as root: all six cameras online, events with decodable snapshots, exit 0, no leftovers."""
    from agent.simulator.netns import netns_unavailable_reason

    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(reason)
    run = DemoRun(["--duration", str(DURATION_S), "--plain"], tmp_path / "demo")
    runs.append(run)
    assert run.wait_for(lambda ls: any(line.startswith("demo: running") for line in ls), START_DEADLINE_S), run.text
    assert namespaces_of(run.proc.pid), "namespace mode did not create its private LAN"
    assert run.finish(DURATION_S + 60) == 0, run.text
    text = run.text
    assert "namespace mode" in text
    for name in camera_names(6):
        assert f"camera {name}: online" in text, f"{name} never online:\n{text}"
    assert "cameras online: 6/6 at the end" in text or "(6 online at some point)" in text, text
    _check_snapshots(run)
    assert "everything the demo started has stopped" in text
    config = yaml.safe_load((run.dir / "agent.yaml").read_text())
    assert config["discovery"]["enabled"] and config["discovery"]["interfaces"] == ["lan0"]
    _check_nothing_left(run)


def test_demo_loopback_mode_stops_everything_on_sigterm(tmp_path: Path, runs: list[DemoRun]) -> None:
    """--loopback, output to a pipe (plain lines by default): events arrive; SIGTERM stops it all cleanly, exit 0."""
    import signal

    run = DemoRun(["--loopback", "--cameras", "2"], tmp_path / "demo")
    runs.append(run)
    assert run.wait_for(lambda ls: any(line.startswith("demo: running") for line in ls), START_DEADLINE_S), run.text
    assert run.wait_for(lambda _ls: bool(run.snapshots()), 90), run.text
    assert run.wait_for(lambda ls: sum(": online" in line for line in ls) >= 2, 60), run.text
    run.proc.send_signal(signal.SIGTERM)
    assert run.finish(60) == 0, run.text
    text = run.text
    assert "loopback mode" in text and "\x1b[" not in text
    config = yaml.safe_load((run.dir / "agent.yaml").read_text())
    assert config["discovery"] == {"enabled": False} and all(c["url"] for c in config["cameras"])
    _check_snapshots(run)
    assert "everything the demo started has stopped" in text
    _check_nothing_left(run)


@pytest.mark.netns
def test_demo_sigterm_during_start_up_removes_what_had_started(tmp_path: Path, runs: list[DemoRun]) -> None:
    """SIGTERM while the cameras are still being prepared: exit 143, the private LAN and every child are gone."""
    import signal

    from agent.simulator.netns import netns_unavailable_reason

    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(reason)
    # An empty scene cache makes the simulator encode first: start-up is then long enough to interrupt.
    run = DemoRun(["--cameras", "1"], tmp_path / "demo", env={"MATTHAN_SIM_CACHE": str(tmp_path / "empty-cache")})
    runs.append(run)
    assert run.wait_for(lambda ls: any(line.startswith("demo: starting") for line in ls), 60), run.text
    assert namespaces_of(run.proc.pid), "the private LAN should exist before the cameras start"
    run.proc.send_signal(signal.SIGTERM)
    assert run.finish(60) == 128 + signal.SIGTERM, run.text
    assert "SIGTERM during start-up" in run.text and "demo: running" not in run.text
    assert namespaces_of(run.proc.pid) == []
    assert run.survivors() == []
