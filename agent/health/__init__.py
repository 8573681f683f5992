"""Health: host metrics, the camera status machine, the state file for `matthan-agent status`, doctor checks.

Public API for the daemon:
- `StatusBoard` (`status.py`): `add/sync/remove`, `observe(report)`, `tick()`, `set_enabled`, `snapshot()`,
  `reports()` — returns `CameraStatus`es to publish retained, only on change.
- `HealthCollector` (`metrics.py`): `observe(report)`, `sample(statuses=, reports=, outbox=, worker_pids=,
  onvif_errors=)` → `HealthSample`; `sample_to_dict` for JSON.
- `StateFileWriter` (`statefile.py`): `write(statuses, last_events=, health=)` every few seconds; `remove()` at exit.
- `HealthService` + `HealthHooks` (`service.py`): the health thread wiring the three above; `observe(report)`,
  `set_enabled`, `rebirth`, `run(stop)`.
- `checks` / `probes`: the doctor's steps (used by `matthan-agent doctor`); `schema.validate_health`.

Imports only agent.models, agent.i18n (markers), psutil and the standard library.
"""

from agent.health.board import StatusBoard
from agent.health.metrics import HealthCollector, HostPaths, sample_to_dict
from agent.health.service import HealthHooks, HealthService
from agent.health.statefile import StateFileWriter, read_state
from agent.health.status import REASON_MESSAGES, StatusMachine, StatusThresholds, daytime_between

__all__ = [
    "REASON_MESSAGES",
    "HealthCollector",
    "HealthHooks",
    "HealthService",
    "HostPaths",
    "StateFileWriter",
    "StatusBoard",
    "StatusMachine",
    "StatusThresholds",
    "daytime_between",
    "read_state",
    "sample_to_dict",
]
