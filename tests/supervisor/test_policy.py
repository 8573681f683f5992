"""Pure supervisor rules: backoff, restart budget, and where cameras go on a reload."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from agent.supervisor.policy import RestartBudget, backoff_s, plan_reload, stalled_cameras


@dataclass(frozen=True)
class Job:
    camera_id: str
    uri: str = "rtsp://x"


def test_backoff_doubles_and_caps() -> None:
    """1, 2, 4, 8 ... seconds, never above the cap."""
    assert [backoff_s(n, 1.0, 10.0) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_budget_refuses_over_limit_within_window() -> None:
    """Three restarts in the window are allowed, the fourth is refused."""
    budget = RestartBudget(limit=3, window_s=60.0)
    assert [budget.spend(t) for t in (0.0, 1.0, 2.0, 3.0)] == [True, True, True, False]
    assert budget.spent == 3


def test_budget_window_slides() -> None:
    """Restarts older than the window no longer count."""
    budget = RestartBudget(limit=2, window_s=10.0)
    assert budget.spend(0.0) and budget.spend(5.0)
    assert not budget.spend(9.0)
    assert budget.spend(10.5)  # the restart at 0.0 has left the window


def test_plan_initial_round_robin_over_pool() -> None:
    """Five cameras on a pool of two: spread round-robin, several per worker."""
    plan = plan_reload({}, [Job(f"c{i}") for i in range(5)], pool_size=2)
    assert [[j.camera_id for j in group] for group in plan.new] == [["c0", "c2", "c4"], ["c1", "c3"]]
    assert not plan.restart and not plan.keep and not plan.retire


def test_plan_fewer_cameras_than_cpus() -> None:
    """One camera on a four-CPU box makes one worker, not four."""
    assert len(plan_reload({}, [Job("only")], pool_size=4).new) == 1


def test_plan_unchanged_jobs_keep_every_worker() -> None:
    """Reloading the same jobs touches nothing."""
    current = {0: [Job("a"), Job("c")], 1: [Job("b")]}
    plan = plan_reload(current, [Job("a"), Job("b"), Job("c")], pool_size=2)
    assert plan.keep == {0, 1} and not plan.restart and not plan.new and not plan.retire


def test_plan_changed_camera_restarts_only_its_worker() -> None:
    """A changed stream URI restarts the one worker that holds that camera."""
    current = {0: [Job("a"), Job("c")], 1: [Job("b")]}
    plan = plan_reload(current, [Job("a"), Job("b", "rtsp://new"), Job("c")], pool_size=2)
    assert plan.keep == {0} and dict(plan.restart) == {1: (Job("b", "rtsp://new"),)}


def test_plan_added_camera_uses_room_then_least_loaded() -> None:
    """New cameras get a new worker while the pool has room; otherwise they join the least-loaded worker."""
    current = {0: [Job("a"), Job("c")], 1: [Job("b")]}
    roomy = plan_reload(current, [Job("a"), Job("b"), Job("c"), Job("d")], pool_size=3)
    assert roomy.keep == {0, 1} and roomy.new == ((Job("d"),),)
    full = plan_reload(current, [Job("a"), Job("b"), Job("c"), Job("d")], pool_size=2)
    assert full.keep == {0} and dict(full.restart) == {1: (Job("b"), Job("d"))} and not full.new


def test_plan_removed_cameras_retire_or_restart() -> None:
    """A worker left without cameras retires; one that lost some is restarted with the rest."""
    current = {0: [Job("a"), Job("c")], 1: [Job("b")]}
    plan = plan_reload(current, [Job("a")], pool_size=2)
    assert plan.retire == {1} and dict(plan.restart) == {0: (Job("a"),)}


def test_plan_duplicate_camera_is_refused() -> None:
    """Two jobs with one camera id are a configuration bug, not something to guess about."""
    with pytest.raises(ValueError, match="twice"):
        plan_reload({}, [Job("a"), Job("a")], pool_size=2)


def test_stalled_uses_boot_timeout_before_first_beat() -> None:
    """A camera that never beat is judged by the boot timeout, one that beat before by the hang timeout."""
    ids, moved = ("new", "old"), (0.0, 0.0)
    assert stalled_cameras(ids, (0, 5), moved, now=10.0, hang_timeout_s=5.0, boot_timeout_s=60.0) == ["old"]
    assert stalled_cameras(ids, (0, 5), moved, now=61.0, hang_timeout_s=5.0, boot_timeout_s=60.0) == ["new", "old"]
    assert stalled_cameras(ids, (1, 5), (9.0, 9.0), now=10.0, hang_timeout_s=5.0, boot_timeout_s=60.0) == []
