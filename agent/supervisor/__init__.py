"""Supervised camera worker processes, signals and systemd notification for the agent daemon.

The composition root builds a `Supervisor` from camera jobs (any picklable value with a `camera_id`, compared by
value) and the dotted path of a worker entry, and drives it with a `SupervisorLoop`. A worker entry is called in a
spawned process as `entry(jobs, reports, heartbeat, stop)`:

- `reports.put(report)` never blocks (drops when the supervisor is behind; reports are cumulative);
- `heartbeat.beat(camera_id)` after every frame processed; `heartbeat.idle_wait(camera_id, stop, s)` to wait
  out a reconnect backoff (it beats once a second, so an idle camera is not taken for a hung one);
- `stop` is a `threading.Event`, set on shutdown, reload of this worker's cameras, or SIGTERM;
- return 0 when stopped, or raise `WorkerConfigError` (exit 78) when the jobs cannot work: no respawn.

In the composition root (main thread)::

    supervisor = Supervisor(SupervisorSettings(worker_entry="agent.app.worker:run_cameras"), jobs,
                            on_report=status_machine.feed, on_event=on_pool_event)
    SupervisorLoop(supervisor, on_reload=lambda: supervisor.set_jobs(load_jobs()), healthy=threads_alive,
                   status_text=status_line).run()   # returns after SIGTERM/SIGINT, workers stopped
"""

from agent.supervisor.channels import Heartbeat, ReportSink
from agent.supervisor.child import EX_CONFIG, WorkerConfigError
from agent.supervisor.loop import SupervisorLoop, default_status
from agent.supervisor.policy import CameraJob, default_pool_size, plan_reload
from agent.supervisor.pool import Supervisor, describe_exit
from agent.supervisor.sdnotify import Notifier
from agent.supervisor.signals import SignalQueue
from agent.supervisor.state import (
    EventKind,
    PoolSnapshot,
    SupervisorEvent,
    SupervisorSettings,
    WorkerInfo,
    WorkerState,
)

__all__ = [
    "EX_CONFIG",
    "CameraJob",
    "EventKind",
    "Heartbeat",
    "Notifier",
    "PoolSnapshot",
    "ReportSink",
    "SignalQueue",
    "Supervisor",
    "SupervisorEvent",
    "SupervisorLoop",
    "SupervisorSettings",
    "WorkerConfigError",
    "WorkerInfo",
    "WorkerState",
    "default_pool_size",
    "default_status",
    "describe_exit",
    "plan_reload",
]
