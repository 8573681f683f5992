"""The worker pool with real spawned processes: heartbeats, crashes, hangs, budgets, exit 78, reloads."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import psutil

from agent.models import CameraReport
from agent.supervisor import EventKind, WorkerState
from tests.supervisor.dummy_workers import DummyJob


def _all_running(h) -> bool:  # type: ignore[no-untyped-def]
    snap = h.supervisor.snapshot()
    return all(state is WorkerState.RUNNING for state in snap.cameras.values())


def test_pool_steady_workers_beat_and_report(make_pool) -> None:  # type: ignore[no-untyped-def]
    """Four cameras on two named workers: every camera beats, and reports from each arrive in the supervisor."""
    h = make_pool([DummyJob(f"cam{i}") for i in range(4)])
    h.drive(lambda: _all_running(h) and {r.camera_id for r in h.reports} == {"cam0", "cam1", "cam2", "cam3"},
            what="all cameras running and reporting")
    snap = h.supervisor.snapshot()
    assert [w.camera_ids for w in snap.workers] == [("cam0", "cam2"), ("cam1", "cam3")]
    assert all(isinstance(r, CameraReport) for r in h.reports)
    names = sorted(psutil.Process(w.pid).name() for w in snap.workers if w.pid is not None)
    assert names == ["matthan-w0", "matthan-w1"], "workers are named in ps/top"


def test_pool_segfault_restarts_only_its_cameras(make_pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A worker that segfaults is respawned with its own cameras; the other worker keeps its PID."""
    jobs = [DummyJob("a"), DummyJob("b", "segfault_once", marker=str(tmp_path / "b.crashed")), DummyJob("c")]
    h = make_pool(jobs)
    h.drive(lambda: bool(h.events_of(EventKind.EXITED)), what="the segfault")
    (exited,) = h.events_of(EventKind.EXITED)
    assert exited.slot == 1 and exited.camera_ids == ("b",) and exited.exitcode == -signal.SIGSEGV
    h.drive(lambda: _all_running(h), what="the crashed worker running again")
    started = h.events_of(EventKind.STARTED)
    assert [e.slot for e in started].count(0) == 1, "the healthy worker must not be restarted"
    assert [e.slot for e in started].count(1) == 2
    assert h.pids()[0] == h.events_of(EventKind.STARTED, slot=0)[0].pid
    assert h.pids()[1] != exited.pid


def test_pool_hung_worker_is_killed_and_restarted(make_pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A worker whose camera stops beating gets SIGTERM, then SIGKILL when it ignores it, then a respawn."""
    h = make_pool([DummyJob("a", "hang_once", marker=str(tmp_path / "a.hung")), DummyJob("b")], hang_timeout_s=2.0)
    h.drive(lambda: bool(h.events_of(EventKind.EXITED)), what="the hung worker being killed")
    (hung,) = h.events_of(EventKind.HUNG)
    assert hung.camera_ids == ("a",) and "a" in hung.message
    (exited,) = h.events_of(EventKind.EXITED)
    assert exited.exitcode == -signal.SIGKILL, "the hung worker ignores stop, so only SIGKILL ends it"
    h.drive(lambda: _all_running(h), what="the hung worker's camera running again")
    assert len(h.events_of(EventKind.STARTED, slot=1)) == 1


def test_pool_budget_exhausted_marks_cameras_failed(make_pool) -> None:  # type: ignore[no-untyped-def]
    """A worker that keeps crashing is restarted `restart_limit` times, then its cameras are FAILED for good."""
    h = make_pool([DummyJob("ok"), DummyJob("bad", "crash")], restart_limit=2, restart_window_s=60.0)
    h.drive(lambda: bool(h.events_of(EventKind.FAILED)), what="the FAILED event")
    (failed,) = h.events_of(EventKind.FAILED)
    assert failed.camera_ids == ("bad",) and "budget" in failed.message and failed.exitcode == 70
    assert len(h.events_of(EventKind.STARTED, slot=1)) == 3  # the first start and two restarts
    h.drive(lambda: False if h.supervisor.snapshot().cameras["ok"] is not WorkerState.RUNNING else len(h.reports) > 50,
            what="more ticks while the failed worker stays down")
    assert len(h.events_of(EventKind.STARTED, slot=1)) == 3
    snap = h.supervisor.snapshot()
    assert snap.cameras == {"ok": WorkerState.RUNNING, "bad": WorkerState.FAILED}
    assert snap.workers[1].pid is None and snap.workers[1].last_exitcode == 70


def test_pool_config_error_is_not_respawned(make_pool) -> None:  # type: ignore[no-untyped-def]
    """A worker exiting 78 is left down (CONFIG_ERROR) while the others run; a reload gives it another go."""
    h = make_pool([DummyJob("ok"), DummyJob("misconfigured", "config_error")])
    h.drive(lambda: bool(h.events_of(EventKind.CONFIG_ERROR)), what="the config error")
    h.drive(lambda: _running_count(h) == 1 and len(h.reports) > 30, what="the healthy camera keeps running")
    assert h.supervisor.snapshot().cameras["misconfigured"] is WorkerState.CONFIG_ERROR
    assert not h.events_of(EventKind.EXITED) and len(h.events_of(EventKind.STARTED, slot=1)) == 1
    h.supervisor.set_jobs([DummyJob("ok"), DummyJob("misconfigured")])  # the operator fixed it
    h.drive(lambda: _all_running(h), what="the fixed camera running")
    assert len(h.events_of(EventKind.STARTED, slot=0)) == 1


def _running_count(h) -> int:  # type: ignore[no-untyped-def]
    return h.supervisor.snapshot().count(WorkerState.RUNNING)


def test_pool_full_report_pipe_never_blocks_worker(make_pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With nobody reading, 5000 reports into a 4 KiB pipe: puts return at once and the excess is dropped."""
    result = tmp_path / "flood.json"
    h = make_pool([DummyJob("flood", "flood", marker=str(result), flood_count=5000)], workers=1,
                  report_pipe_bytes=4096)
    # Deliberately no tick while the worker floods: the pipe stays full.
    deadline_ok = _wait_file(result)
    assert deadline_ok, "the flooding worker never finished: a put() blocked"
    data = json.loads(result.read_text())
    assert data["sent"] + data["dropped"] == 5000 and data["dropped"] > 4000
    assert data["max_put_s"] < 0.5
    h.drive(lambda: len(h.reports) >= data["sent"], what="the reports that fitted")
    assert h.reports[0].camera_id == "flood"


def _wait_file(path: Path, timeout_s: float = 30.0) -> bool:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.05)
    return False


def test_pool_reload_restarts_only_changed_workers(make_pool) -> None:  # type: ignore[no-untyped-def]
    """SIGHUP-style reload: a changed camera restarts its worker only; removing all of a worker's cameras retires it."""
    h = make_pool([DummyJob("a"), DummyJob("b"), DummyJob("c")])  # worker 0: a, c; worker 1: b
    h.drive(lambda: _all_running(h), what="all running")
    first = h.pids()
    h.supervisor.set_jobs([DummyJob("a"), DummyJob("b", period_s=0.03), DummyJob("c")])
    h.drive(lambda: _all_running(h) and h.pids()[1] != first[1], what="worker 1 restarted with the changed camera")
    assert h.pids()[0] == first[0]
    second = h.pids()
    h.supervisor.set_jobs([DummyJob("b", period_s=0.03), DummyJob("d")])  # a and c go; d takes the freed room
    h.drive(lambda: bool(h.events_of(EventKind.RETIRED)) and _all_running(h), what="worker 0 retired, d running")
    snap = h.supervisor.snapshot()
    assert [(w.slot, w.camera_ids) for w in snap.workers] == [(1, ("b",)), (2, ("d",))]
    assert h.pids()[1] == second[1], "worker 1's cameras did not change, so it must not restart"
    assert not psutil.pid_exists(first[0]) or psutil.Process(first[0]).status() == psutil.STATUS_ZOMBIE


def test_pool_split_isolates_the_crashing_camera(make_pool) -> None:  # type: ignore[no-untyped-def]
    """A crash-looping worker with three cameras is bisected until only the crashing camera is FAILED."""
    h = make_pool([DummyJob("ok1"), DummyJob("bad", "crash"), DummyJob("ok2")], workers=1, max_workers=3,
                  restart_limit=1)
    h.drive(lambda: bool(h.events_of(EventKind.FAILED)) and _running_count(h) == 2, what="isolation of 'bad'")
    snap = h.supervisor.snapshot()
    assert snap.cameras == {"ok1": WorkerState.RUNNING, "bad": WorkerState.FAILED, "ok2": WorkerState.RUNNING}
    assert [e.camera_ids for e in h.events_of(EventKind.SPLIT)] == [("ok1", "bad", "ok2"), ("bad", "ok2")]
    assert len(snap.workers) == 3
