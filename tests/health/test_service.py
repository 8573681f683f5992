"""The health thread's one-tick step and its run loop: status changes out, health samples when due, state file."""

from __future__ import annotations

import threading
from pathlib import Path

from agent.health.board import StatusBoard
from agent.health.metrics import HealthCollector, HostPaths
from agent.health.service import HealthHooks, HealthService
from agent.health.statefile import StateFileWriter, read_state
from agent.models import CameraReport, CameraState, CameraStatus, HealthSample, StatusReason


class Clock:
    def __init__(self) -> None:
        self.t = 500.0

    def __call__(self) -> float:
        return self.t


def build(tmp_path: Path, clock: Clock) -> tuple[HealthService, list[CameraStatus], list[HealthSample]]:
    statuses: list[CameraStatus] = []
    samples: list[HealthSample] = []
    paths = HostPaths(thermal_dir=tmp_path / "x", wireless=tmp_path / "x", vcgencmd="", use_psutil_sensors=False)
    service = HealthService(
        StatusBoard(mono=clock), HealthCollector(version="1", state_dir=tmp_path, paths=paths, mono=clock),
        StateFileWriter(tmp_path, version="1"),
        HealthHooks(publish_status=statuses.append, publish_health=samples.append,
                    outbox_stats=lambda: {"depth": 1}, last_events=lambda: {"cho": 1.0}),
        health_interval_s=60, state_interval_s=5, mono=clock,
    )
    return service, statuses, samples


def test_service_publishes_changes_and_samples_when_due(tmp_path: Path) -> None:
    """A report's status change is published at once; health is sampled every interval; state file follows."""
    clock = Clock()
    service, statuses, samples = build(tmp_path, clock)
    service.observe(CameraReport("cho", 0.0, False, error=StatusReason.UNREACHABLE))
    assert [(s.state, s.reason) for s in statuses] == [(CameraState.OFFLINE, StatusReason.UNREACHABLE)]
    service.step()
    assert samples == [] and read_state(tmp_path).cameras["cho"]["reason"] == "unreachable"
    clock.t += 61
    service.step()
    assert len(samples) == 1 and samples[0].outbox == {"depth": 1} and "cho" in samples[0].cameras
    assert read_state(tmp_path).health is not None
    assert read_state(tmp_path).cameras["cho"]["last_event_ts"] == 1.0


def test_service_set_enabled_and_rebirth(tmp_path: Path) -> None:
    """Disabling publishes offline/disabled at once; rebirth re-publishes every camera's status."""
    clock = Clock()
    service, statuses, _ = build(tmp_path, clock)
    service.board.add("a")
    service.board.add("b")
    service.set_enabled("a", False)
    assert statuses[-1].reason is StatusReason.DISABLED
    statuses.clear()
    assert service.rebirth() == 2 and {s.camera_id for s in statuses} == {"a", "b"}


def test_service_publisher_failure_contained(tmp_path: Path) -> None:
    """A publisher that raises does not stop status tracking or sampling."""
    clock = Clock()

    def boom(_: object) -> None:
        raise RuntimeError("broker gone")

    service = HealthService(StatusBoard(mono=clock),
                            HealthCollector(version="1", state_dir=tmp_path, mono=clock), None,
                            HealthHooks(publish_status=boom, publish_health=boom), mono=clock)
    service.observe(CameraReport("cho", 0.0, False, error=StatusReason.UNREACHABLE))
    clock.t += 100
    service.step()
    assert service.board.snapshot()["cho"].state is CameraState.OFFLINE


def test_service_run_loop_stops_and_removes_state(tmp_path: Path) -> None:
    """The run loop writes the state file at start and removes it when stopped."""
    service, _, _ = build(tmp_path, Clock())
    stop = threading.Event()
    written = threading.Event()
    original = service.write_state

    def spy() -> None:
        original()
        written.set()

    service.write_state = spy  # type: ignore[method-assign]
    t = threading.Thread(target=service.run, args=(stop,))
    t.start()
    assert written.wait(5)
    assert (tmp_path / "agent-state.json").exists()
    stop.set()
    t.join(5)
    assert not t.is_alive() and not (tmp_path / "agent-state.json").exists()
