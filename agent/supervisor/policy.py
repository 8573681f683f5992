"""The supervisor's decisions, as pure functions of plain values: restart budget, backoff, camera placement.

Kept apart from the process handling so each rule can be tested without starting a process.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class CameraJob(Protocol):
    """What the supervisor needs of a camera job: a stable id. Jobs must be picklable and compare by value."""

    @property
    def camera_id(self) -> str: ...


def default_pool_size() -> int:
    """The CPUs this process may run on (a cgroup or `taskset` may allow fewer than the machine has)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def backoff_s(consecutive_failures: int, initial_s: float, max_s: float) -> float:
    """Delay before respawn number `consecutive_failures` (1-based): initial, 2x, 4x, ... capped at max."""
    if consecutive_failures <= 1:
        return min(initial_s, max_s)
    return min(max_s, initial_s * 2.0 ** (consecutive_failures - 1))


def stalled_cameras(
    camera_ids: Sequence[str],
    counts: Sequence[int],
    moved_at: Sequence[float],
    now: float,
    hang_timeout_s: float,
    boot_timeout_s: float,
) -> list[str]:
    """Cameras whose heartbeat counter has not moved for too long: `boot_timeout_s` before their first beat
    (imports and first connection are slow), `hang_timeout_s` after it."""
    return [cid for cid, count, moved in zip(camera_ids, counts, moved_at, strict=True)
            if now - moved > (hang_timeout_s if count else boot_timeout_s)]


@dataclass
class RestartBudget:
    """At most `limit` restarts in any `window_s` seconds (a sliding window of monotonic times)."""

    limit: int
    window_s: float
    _times: deque[float] = field(default_factory=deque)

    def spend(self, now: float) -> bool:
        """Record a restart at `now`; False if that exceeds the budget (the restart must not happen)."""
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True

    def reset(self) -> None:
        self._times.clear()

    @property
    def spent(self) -> int:
        return len(self._times)


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """How a new list of camera jobs maps onto the running workers (slot number -> jobs).

    - `keep`: workers whose cameras are exactly as before; they are not touched.
    - `restart`: workers that must be restarted with a new list (a camera changed, left, or joined them).
    - `retire`: workers all of whose cameras are gone; they are stopped and not replaced.
    - `new`: job lists for workers to start.
    """

    keep: frozenset[int]
    restart: Mapping[int, tuple[Any, ...]]
    retire: frozenset[int]
    new: tuple[tuple[Any, ...], ...]


def _check_unique(jobs: Sequence[CameraJob]) -> None:
    seen: set[str] = set()
    for job in jobs:
        if job.camera_id in seen:
            raise ValueError(f"camera {job.camera_id!r} appears twice in the job list")
        seen.add(job.camera_id)


def plan_reload(current: Mapping[int, Sequence[CameraJob]], jobs: Sequence[CameraJob], pool_size: int) -> ReloadPlan:
    """Place `jobs` on workers, disturbing as few running workers as possible.

    A camera stays with the worker that holds it. A changed camera restarts only its own worker. Cameras that
    are new go to new workers while the pool has room (round-robin over them), otherwise each joins the least
    loaded worker, which is then restarted: a few seconds' gap for that worker's cameras, the price of not
    needing a control protocol into a running worker.
    """
    if pool_size < 1:
        raise ValueError(f"pool_size must be at least 1, not {pool_size}")
    _check_unique(jobs)
    wanted = {job.camera_id: job for job in jobs}
    placed: set[str] = set()
    lists: dict[int, list[Any]] = {}
    touched: set[int] = set()
    retire: set[int] = set()
    for slot, held in current.items():
        kept = [wanted[j.camera_id] for j in held if j.camera_id in wanted]
        placed.update(j.camera_id for j in kept)
        if not kept:
            retire.add(slot)
            continue
        lists[slot] = kept
        if len(kept) != len(held) or any(a != b for a, b in zip(kept, held, strict=True)):
            touched.add(slot)
    added = [job for job in jobs if job.camera_id not in placed]
    room = max(0, pool_size - len(lists))
    new: list[list[Any]] = [[] for _ in range(min(room, len(added)))]
    for i, job in enumerate(added):
        if new:
            new[i % len(new)].append(job)
        else:
            slot = min(lists, key=lambda s: (len(lists[s]), s))
            lists[slot].append(job)
            touched.add(slot)
    return ReloadPlan(
        keep=frozenset(set(lists) - touched),
        restart={slot: tuple(lists[slot]) for slot in sorted(touched)},
        retire=frozenset(retire),
        new=tuple(tuple(n) for n in new),
    )
