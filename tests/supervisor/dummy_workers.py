"""Small worker entries for the supervisor tests; a real module so that `spawn` children can import it.

Each camera job names a behaviour, so one worker can hold a well-behaved camera next to a crashing one.
"""

from __future__ import annotations

import ctypes
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from agent.models import CameraReport
from agent.supervisor import Heartbeat, ReportSink, WorkerConfigError

BEATS_BEFORE_TROUBLE = 3  # a misbehaving camera first shows progress, so the supervisor sees it as started


@dataclass(frozen=True)
class DummyJob:
    """A fake camera; `behaviour`: steady, segfault(_once), hang(_once), crash, config_error or flood."""

    camera_id: str
    behaviour: str = "steady"
    marker: str = ""  # a file: *_once behaviours misbehave only while it does not exist; flood writes results here
    period_s: float = 0.02
    flood_count: int = 0


def _once(job: DummyJob) -> bool:
    """True the first time only (across processes): creates the marker file."""
    try:
        fd = os.open(job.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def _flood(job: DummyJob, reports: ReportSink, heartbeat: Heartbeat) -> None:
    worst = 0.0
    for n in range(job.flood_count):
        t0 = time.monotonic()
        reports.put(CameraReport(camera_id=job.camera_id, ts=time.time(), connected=True, frames_in=n))
        worst = max(worst, time.monotonic() - t0)
        heartbeat.beat(job.camera_id)
    result = {"max_put_s": worst, "sent": reports.sent, "dropped": reports.dropped}
    tmp = Path(job.marker + ".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(job.marker)


def _camera(job: DummyJob, reports: ReportSink, heartbeat: Heartbeat, stop: threading.Event) -> None:
    trouble = job.behaviour in ("segfault", "crash", "hang") or (job.behaviour.endswith("_once") and _once(job))
    if job.behaviour == "flood":
        _flood(job, reports, heartbeat)
    n = 0
    while not stop.wait(job.period_s):
        n += 1
        heartbeat.beat(job.camera_id)
        reports.put(CameraReport(camera_id=job.camera_id, ts=time.time(), connected=True, frames_in=n,
                                 error_message=str(os.getpid())))
        if trouble and n >= BEATS_BEFORE_TROUBLE:
            if job.behaviour.startswith("segfault"):
                ctypes.string_at(0)  # a NULL dereference, as a decoder crash would do
            if job.behaviour == "crash":
                os._exit(70)
            if job.behaviour in ("hang", "hang_once"):
                threading.Event().wait()  # stuck for good, deaf to `stop`, like a thread inside a C call


def run_dummy(jobs: list[DummyJob], reports: ReportSink, heartbeat: Heartbeat, stop: threading.Event) -> int:
    """Worker entry: one thread per camera; returns when every camera thread has returned."""
    bad = [j.camera_id for j in jobs if j.behaviour == "config_error"]
    if bad:
        raise WorkerConfigError(f"cameras {bad} have an impossible configuration")
    threads = [threading.Thread(target=_camera, args=(j, reports, heartbeat, stop), name=j.camera_id, daemon=True)
               for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()  # no timeout on purpose: a hung camera keeps the worker hung, as a real stuck decoder would
    return 0
