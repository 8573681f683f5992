"""A supervisor process for the signal tests: `python -m tests.supervisor.run_pool JOBS_FILE WORKERS`.

JOBS_FILE is JSON: a list of [camera_id, behaviour]; SIGHUP re-reads it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from agent.logsetup import setup_logging
from agent.supervisor import Supervisor, SupervisorLoop, SupervisorSettings
from tests.supervisor.dummy_workers import DummyJob


def load(path: Path) -> list[DummyJob]:
    return [DummyJob(camera_id=cid, behaviour=behaviour) for cid, behaviour in json.loads(path.read_text())]


def main(argv: list[str]) -> int:
    jobs_file, workers = Path(argv[0]), int(argv[1])
    setup_logging("INFO")
    settings = SupervisorSettings(worker_entry="tests.supervisor.dummy_workers:run_dummy", workers=workers,
                                  hang_timeout_s=10.0, boot_timeout_s=30.0, stop_timeout_s=4.0)
    supervisor = Supervisor(settings, load(jobs_file))
    loop = SupervisorLoop(supervisor, on_reload=lambda: supervisor.set_jobs(load(jobs_file)), tick_s=0.2,
                          stop_workers_s=4.0)
    return loop.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
