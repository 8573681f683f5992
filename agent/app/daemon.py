"""`matthan-agent run`: the composition root that wires every package into one supervised daemon.

Threads of the supervisor process (docs/architecture.md):
- main: the `SupervisorLoop` (signals, worker pool, sd_notify) and, once per tick, camera-set changes;
- `onvif`: one asyncio loop for WS-Discovery, ONVIF interrogation and Hello/Bye;
- `mqtt-conn`/`mqtt-inbound` (the client), `relay` (outbox → broker), `health` (status machine, health, state
  file), `commands` (a bounded queue of MQTT commands, agent.app.command_queue).
Camera work runs in spawned worker processes (agent.app.worker), which commit events to the outbox themselves.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent import __version__
from agent.app.cameras import ResolvedCamera, configured_cameras, discovered_camera, jobs_for, merge
from agent.app.command_queue import CommandQueue
from agent.app.mapping import discovery_settings, mqtt_settings, relay_settings, supervisor_settings
from agent.app.ops import DaemonOps
from agent.app.shutdown import CLIENT_RESERVE_S, RELAY_RESERVE_S, StopBudget
from agent.commands import CommandDispatcher
from agent.config import AgentConfig, ConfigError, load_config
from agent.health import HealthCollector, HealthHooks, HealthService, StateFileWriter, StatusBoard, daytime_between
from agent.models import CameraReport, CameraStatus, HealthSample, StatusReason
from agent.mqtt import InboundMessage, MqttClient, Relay, payloads, records
from agent.outbox import Outbox
from agent.supervisor import EventKind, Supervisor, SupervisorEvent, SupervisorLoop

log = logging.getLogger(__name__)

EX_OK, EX_CANTCREAT, EX_CONFIG = 0, 73, 78
# Stuck-IR check: a camera still greyscale (infra-red night mode) between these local hours is stuck. 07-17 h stays
# clear of dawn and dusk all year at Vietnamese latitudes; Vietnam is UTC+7 all year (no daylight saving), and the
# offset is explicit because a Pi's clock is often left in UTC.
DAYTIME_HOURS = (7.0, 17.0)
VIETNAM_UTC_OFFSET_H = 7.0

FAILURE_STATUS = {  # discovery's failure reasons in the status machine's words
    "auth failed": StatusReason.AUTH_FAILED,
    "no ONVIF answer": StatusReason.UNREACHABLE,
    "timeout": StatusReason.UNREACHABLE,
    "clock skew too large": StatusReason.ONVIF_ERROR,
    "unsupported": StatusReason.ONVIF_ERROR,
}


class Daemon:
    """Build with a validated configuration; `run()` blocks until SIGTERM/SIGINT and returns an exit code."""

    def __init__(self, cfg: AgentConfig, *, config_path: Path) -> None:
        self.cfg = cfg
        self.config_path = config_path
        self.state_dir = Path(cfg.storage.state_dir)
        self._lock = threading.Lock()  # guards the camera maps below (onvif and commands threads write them)
        self._discovered: dict[str, ResolvedCamera] = {}
        self._runtime_disabled: set[str] = set()
        self._onvif_errors: dict[str, int] = {}
        self._cameras_dirty = threading.Event()
        self._cameras: list[ResolvedCamera] = []
        self._last_events: dict[str, float] = {}
        self._event_counts: dict[str, int] = {}
        self._worker_pids: tuple[int, ...] = ()
        self._stop = threading.Event()
        self._stopping = threading.Event()  # shutdown has begun: camera statuses are no longer published
        self.stop_budget = StopBudget()  # one deadline for the whole shutdown, taken when the stop begins
        self._unhealthy: str | None = None  # the last reason the watchdog was withheld (logged once per change)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_stop: asyncio.Event | None = None
        self.manager: Any = None  # the DiscoveryManager, when discovery is on

    # -- building ----------------------------------------------------------------------------------------------
    def _build(self) -> None:
        cfg = self.cfg
        self.outbox = Outbox(self.state_dir / "outbox.sqlite3", agent_id=cfg.agent_id,
                             max_bytes=int(cfg.storage.outbox_max_bytes), max_rows=int(cfg.storage.outbox_max_rows))
        self.client = MqttClient(mqtt_settings(cfg))
        self.topics = self.client.topics
        self.relay = Relay(self.outbox, self.client, relay_settings(cfg))
        self.board = StatusBoard(daytime=daytime_between(*DAYTIME_HOURS, utc_offset_h=VIETNAM_UTC_OFFSET_H))
        self.collector = HealthCollector(version=__version__, state_dir=self.state_dir)
        hooks = HealthHooks(
            publish_status=self._publish_status,
            publish_health=self._publish_health,
            outbox_stats=lambda: self.outbox.stats().as_dict(),
            worker_pids=lambda: self._worker_pids,
            onvif_errors=lambda: dict(self._onvif_errors),
            last_events=lambda: dict(self._last_events),
            extra_state=self._extra_state,
        )
        self.health = HealthService(self.board, self.collector, StateFileWriter(self.state_dir, version=__version__),
                                    hooks, health_interval_s=cfg.health.interval_s)
        self.ops = DaemonOps(self)
        self.dispatcher = CommandDispatcher(self.ops.command_ops())
        self.commands = CommandQueue(self.dispatcher, self.topics, self.outbox)
        self.client.on_command(self.commands.enqueue)
        if cfg.health.home_assistant.enabled:
            self.client.on_connected(lambda _session: self.publish_ha_discovery())
            self.client.subscribe(self.topics.ha_status(), self._ha_status)
        self._cameras = merge(configured_cameras(cfg), {})
        self.supervisor = Supervisor(supervisor_settings(cfg), self._jobs(), on_report=self._on_report,
                                     on_event=self._on_supervisor_event)
        self._sync_board()

    def _jobs(self) -> list[Any]:
        runnable = [c for c in self._cameras if c.camera_id not in self._runtime_disabled]
        return jobs_for(self.cfg, runnable, state_dir=self.state_dir)

    # -- running -----------------------------------------------------------------------------------------------
    def run(self) -> int:
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            probe = self.state_dir / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            log.error("cannot write the state directory %s (%s); check storage.state_dir and its permissions",
                      self.state_dir, exc.strerror or exc)
            return EX_CANTCREAT
        self._build()
        log.info("matthan-agent %s starting: site %s, agent %s, %d configured camera(s), broker %s:%d, prefix %s",
                 __version__, self.cfg.site_id, self.cfg.agent_id, len(self.cfg.cameras), self.cfg.mqtt.host,
                 self.cfg.mqtt.broker_port, self.cfg.topic_prefix)
        threads = self.start_services()
        loop = SupervisorLoop(self.supervisor, on_reload=self.reload, healthy=self._healthy,
                              status_text=self._status_text, on_tick=self._tick, on_stopping=self.begin_stop)
        try:
            loop.run()
        finally:
            self._shutdown(threads)
        return EX_OK

    def start_services(self) -> list[threading.Thread]:
        """Start everything but the worker pool: client, relay, health, commands and discovery threads."""
        threads = [
            threading.Thread(target=self.health.run, args=(self._stop,), name="health", daemon=True),
            threading.Thread(target=self.commands.run, args=(self._stop,), name="commands", daemon=True),
        ]
        if self.cfg.discovery.enabled:
            threads.append(threading.Thread(target=self._onvif_thread, name="onvif", daemon=True))
        self.client.start()
        self.relay.start()
        for t in threads:
            t.start()
        return threads

    def begin_stop(self) -> None:
        """The stop begins (main thread, just before the workers are asked to stop): the budget's deadline."""
        self.stop_budget.start()
        self._stopping.set()

    def _shutdown(self, threads: list[threading.Thread]) -> None:
        """After the workers stopped: stop discovery, health and commands, drain to the broker, say offline.
        Every stage waits for what is left of the one stop budget, keeping a reserve for the stages after it."""
        budget = self.stop_budget
        budget.start()
        self._stop.set()
        if self._loop is not None and self._async_stop is not None:
            self._loop.call_soon_threadsafe(self._async_stop.set)
        for t in threads:
            t.join(budget.left(RELAY_RESERVE_S + CLIENT_RESERVE_S))
        if self.relay.alive:  # a dead relay reads nothing: handing it a stop request could wait on a full queue
            self.relay.stop(timeout=budget.left(CLIENT_RESERVE_S))
        self.client.stop(timeout=budget.left())  # publishes the explicit `offline`
        self.outbox.close()
        log.info("stopped")

    def _healthy(self, now: float | None = None) -> bool:
        """Withhold the systemd watchdog when a thread that must never stop has stopped or hung: the relay, or the
        MQTT connection thread (alive, and its heartbeat younger than its limit). `now`: time.monotonic()."""
        if self._stop.is_set():
            problem: str | None = "stopping"
        elif not self.relay.alive:
            problem = "the relay thread has stopped"
        elif not self.client.healthy(now):
            problem = (f"the MQTT connection thread has stopped or made no progress for over "
                       f"{self.client.heartbeat_limit_s:.0f} s")
        else:
            problem = None
        if problem != self._unhealthy:
            if problem is not None and problem != "stopping":
                log.error("watchdog: %s; systemd will restart the agent", problem)
            self._unhealthy = problem
        return problem is None

    def _status_text(self) -> str:
        statuses = self.board.snapshot()
        online = sum(1 for s in statuses.values() if s.state.value == "online")
        return f"{online}/{len(statuses)} cameras online"

    def _tick(self) -> None:
        """Main thread, once per supervisor tick: apply camera-set changes; remember worker pids for health."""
        if self._cameras_dirty.is_set():
            self._cameras_dirty.clear()
            with self._lock:
                self._cameras = merge(configured_cameras(self.cfg), self._discovered)
            self.supervisor.set_jobs(self._jobs())
            self._sync_board()
        self._report_streamless()
        self._worker_pids = tuple(w.pid for w in self.supervisor.snapshot().workers if w.pid)

    def _sync_board(self) -> None:
        ids = [c.camera_id for c in self._cameras]
        for gone in self.board.sync(ids):
            # A camera removed from this agent must not stay "online" (or "offline") at the broker forever.
            self.client.clear_state(self.topics.camera_status(gone))
            self.client.clear_state(self.topics.camera_motion(gone))
            for topic, _body in self._ha_camera_configs(gone):
                self.client.clear_state(topic)
        if self.cfg.health.home_assistant.enabled:
            self.publish_ha_discovery()
        for cam in self._cameras:
            enabled = cam.settings.enabled and cam.camera_id not in self._runtime_disabled
            if self.board.enabled(cam.camera_id) != enabled:
                self.health.set_enabled(cam.camera_id, enabled)

    def _report_streamless(self) -> None:
        """Every tick, report the cameras that have no stream to run (discovery could not interrogate them). No
        worker reports for them, and the status machine takes a camera silent for `report_silence_s` (12 s) for a
        stalled one: reported once, an `auth_failed` camera would turn `stream_stalled` after some 16 s."""
        for cam in self._cameras:
            enabled = cam.settings.enabled and cam.camera_id not in self._runtime_disabled
            if enabled and cam.uri is None and cam.reason is not None:
                self.health.observe(CameraReport(cam.camera_id, time.time(), connected=False, error=cam.reason,
                                                 error_message=cam.problem or ""))

    def mark_cameras_changed(self) -> None:
        self._cameras_dirty.set()

    def cameras(self) -> list[ResolvedCamera]:
        """The cameras as of the last tick (a new list each time: safe to read from any thread)."""
        return list(self._cameras)

    def set_runtime_enabled(self, camera_id: str, enabled: bool) -> None:
        """The `set_camera` command: start or stop a camera without touching the configuration file."""
        with self._lock:
            if enabled:
                self._runtime_disabled.discard(camera_id)
            else:
                self._runtime_disabled.add(camera_id)
        self.mark_cameras_changed()

    # -- reload (SIGHUP, reload_config) --------------------------------------------------------------------------
    def reload(self) -> None:
        """Re-read the configuration; on any error keep running with the old one and say why."""
        try:
            cfg = load_config(self.config_path)
        except ConfigError as exc:
            for issue in exc.issues:
                log.error("reload refused: %s", issue)
            return
        if (cfg.mqtt, cfg.storage, cfg.agent_id, cfg.site_id) != (self.cfg.mqtt, self.cfg.storage, self.cfg.agent_id,
                                                                    self.cfg.site_id):
            log.warning("reload: mqtt, storage and identity changes take effect after a restart")
        self.cfg = cfg
        if self.manager is not None:
            settings = discovery_settings(cfg)
            changed = settings != self.manager.settings
            self.manager.settings = settings
            if changed:
                self._recheck_failed()
        self.mark_cameras_changed()
        self._tick()
        log.info("configuration reloaded: %d camera(s) known", len(self._cameras))

    def _recheck_failed(self) -> None:
        """Interrogate again, at once, every discovered camera whose interrogation failed. New credentials or camera
        entries reach such a camera only through an interrogation, and the next round may be minutes away: this is
        what makes "fix the password and reload" retry now. Each camera's login budget (3 per 10 min) still holds."""
        loop, manager = self._loop, self.manager
        with self._lock:
            failed = [c.info for c in self._discovered.values() if c.uri is None and c.info is not None]
        if loop is not None and manager is not None and failed:
            log.info("reload: interrogating again %d camera(s) whose discovery had failed", len(failed))
            loop.call_soon_threadsafe(manager.recheck, failed)

    # -- camera reports and supervisor events (main thread) -------------------------------------------------------
    def _on_report(self, report: Any) -> None:
        if not isinstance(report, CameraReport):
            return
        previous = self._event_counts.get(report.camera_id)
        if previous is not None and report.events > previous:
            self._last_events[report.camera_id] = report.ts
        self._event_counts[report.camera_id] = report.events
        self.health.observe(report)

    def _on_supervisor_event(self, event: SupervisorEvent) -> None:
        if event.kind in (EventKind.EXITED, EventKind.FAILED, EventKind.HUNG, EventKind.CONFIG_ERROR):
            log.warning("camera worker %d (%s): %s %s", event.slot, ", ".join(event.camera_ids), event.kind.value,
                        event.message)
            for camera_id in event.camera_ids:
                self._event_counts.pop(camera_id, None)  # a restarted pipeline counts from zero again
                self.health.observe(CameraReport(camera_id, time.time(), connected=False,
                                                 error=StatusReason.DECODER_ERROR,
                                                 error_message=f"camera worker {event.kind.value}: {event.message}"))

    # -- publishing (health thread) --------------------------------------------------------------------------------
    def _publish_status(self, status: CameraStatus) -> None:
        if self._stopping.is_set():
            return  # a camera stopped by our own shutdown is not "stalled"; the agent's `offline` says it all
        self.client.publish_state(self.topics.camera_status(status.camera_id), payloads.camera_status(status))

    def _publish_health(self, sample: HealthSample) -> None:
        self.outbox.put(records.health(self.topics, sample))

    def _extra_state(self) -> Mapping[str, Any]:
        cams = {c.camera_id: {"ip": c.info.ip if c.info else None, "problem": c.problem,
                              "model": c.info.model if c.info else None} for c in self._cameras}
        return {"site_id": self.cfg.site_id, "agent_id": self.cfg.agent_id, "broker_connected": self.client.connected,
                "cameras": cams, "relay": self.relay.stats(), "commands_busy": self.commands.counters["busy"]}

    def publish_ha_discovery(self) -> int:
        count = 0
        version = __version__
        for topic, body in payloads.ha_agent_configs(self.topics, self.cfg.agent_id, version=version):
            self.client.publish_state(topic, body)
            count += 1
        for cam in self._cameras:
            for topic, body in self._ha_camera_configs(cam.camera_id, name=cam.settings.display_name):
                self.client.publish_state(topic, body)
                count += 1
        return count

    def _ha_camera_configs(self, camera_id: str, name: str | None = None) -> list[tuple[str, bytes]]:
        if not self.cfg.health.home_assistant.enabled:
            return []
        return payloads.ha_camera_configs(self.topics, self.cfg.agent_id, camera_id, name=name)

    def _ha_status(self, msg: InboundMessage) -> None:
        if msg.payload.strip().lower() == b"online":
            self.publish_ha_discovery()

    # -- discovery (onvif thread) ------------------------------------------------------------------------------
    def _onvif_thread(self) -> None:
        from agent.discovery.inventory import Inventory
        from agent.discovery.manager import DiscoveryManager
        from agent.discovery.remote import InterrogationHelper, idle_timeout_for

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._async_stop = asyncio.Event()
            if self._stop.is_set():
                return
            inventory = Inventory.load(self.state_dir / "inventory.json")
            # Interrogation (zeep and the parsed WSDLs, ~35 MB) runs in a helper process that ends when idle.
            helper = InterrogationHelper(idle_s=idle_timeout_for(self.cfg.discovery.interval_s))
            self.manager = DiscoveryManager(discovery_settings(self.cfg), inventory, on_report=self._on_discovery,
                                            on_interrogation=self._on_interrogation,
                                            interval_s=self.cfg.discovery.interval_s,
                                            interrogator=helper.interrogator)
            try:
                await self.manager.run(self._async_stop)
            finally:
                await helper.close()

        try:
            asyncio.run(main())
        except Exception:  # discovery must never take the daemon down; its cameras keep their last state
            log.exception("discovery thread stopped by an error")

    def _on_discovery(self, report: Any) -> None:
        for change in getattr(report, "ip_changes", ()):
            log.warning("[%s] camera moved from %s to %s; keeping its id", change.camera_id, change.old_ip,
                        change.new_ip)
        for row in report.rows:
            self._on_interrogation(row)

    def _on_interrogation(self, row: Any) -> None:
        info = row.info
        if not info.camera_id:
            return
        problem = None if row.ok else f"{row.reason.value if row.reason else 'failed'}: {row.detail}"
        reason = None
        if not row.ok:
            reason = FAILURE_STATUS.get(row.reason.value if row.reason else "", StatusReason.ONVIF_ERROR)
        cam = discovered_camera(self.cfg, info, credential_user=row.credential_user, ok=row.ok, problem=problem,
                                reason=reason)
        with self._lock:
            if not row.ok:
                self._onvif_errors[info.camera_id] = self._onvif_errors.get(info.camera_id, 0) + 1
                old = self._discovered.get(info.camera_id)
                if old is not None and old.uri is not None and row.reason is not None and \
                        row.reason.value in ("timeout", "no ONVIF answer"):
                    return  # ONVIF hiccup on a camera whose stream we already run: keep the stream going
            if self._discovered.get(info.camera_id) == cam:
                return
            self._discovered[info.camera_id] = cam
        self.mark_cameras_changed()

    def rediscover(self) -> bool:
        """Start a discovery round now (from the commands thread)."""
        loop, manager = self._loop, self.manager
        if loop is None or manager is None:
            return False
        async def once() -> None:
            self._on_discovery(await manager.round_once())

        asyncio.run_coroutine_threadsafe(once(), loop)
        return True


def run_daemon(config_path: str) -> int:
    """Load the configuration and run; configuration problems exit 78 so systemd does not restart in a loop."""
    path = Path(config_path)
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        for issue in exc.issues:
            log.error("%s", issue)
        log.error("the configuration has %d problem(s); fix them and start again (check with: matthan-agent "
                  "check-config %s)", len(exc.issues), path)
        return EX_CONFIG
    # glibc gives each thread its own malloc arena; a worker runs two threads per camera, and the arenas'
    # fragmentation cost ~20 MB of PSS over 16 cameras (scripts/bench/agent.py). Spawned workers read this at exec.
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    return Daemon(cfg, config_path=path).run()
