"""The operations behind MQTT commands, on top of the running daemon (agent.commands validates and dispatches).

Each runs on the `commands` thread. Anything that touches the worker pool (reload) goes through the same path as
SIGHUP, so the pool is only ever driven from the main thread.
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.commands import CommandFailed, CommandOps, ErrorCode
from agent.config import ConfigError, load_config
from agent.outbox import Priority, Record

if TYPE_CHECKING:
    from agent.app.daemon import Daemon


class DaemonOps:
    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon

    def command_ops(self) -> CommandOps:
        return CommandOps(
            camera_ids=lambda: [c.camera_id for c in self.d.cameras()],
            rediscover=self.rediscover,
            snapshot=self.snapshot,
            status=self.status,
            reload_config=self.reload_config,
            rebirth=self.rebirth,
            set_camera=self.set_camera,
        )

    def rediscover(self) -> dict[str, Any]:
        if not self.d.cfg.discovery.enabled:
            raise CommandFailed(ErrorCode.UNAVAILABLE, "discovery is turned off in this agent's configuration")
        if not self.d.rediscover():
            raise CommandFailed(ErrorCode.UNAVAILABLE, "discovery is still starting; try again in a few seconds")
        return {"started": True}

    def snapshot(self, camera_id: str) -> dict[str, Any]:
        """Grab one fresh frame from the camera's stream and queue the JPEG through the outbox."""
        from agent.camera.grab import SourceError, grab_jpeg
        from agent.motion import SnapshotSettings

        cam = next((c for c in self.d.cameras() if c.camera_id == camera_id), None)
        if cam is None or cam.uri is None:
            problem = cam.problem if cam is not None else "unknown camera"
            raise CommandFailed(ErrorCode.FAILED, f"camera {camera_id} has no stream to grab: {problem}")
        settings = SnapshotSettings(max_width=cam.settings.snapshot_width, quality=cam.settings.snapshot_jpeg_quality)
        try:
            jpeg = grab_jpeg(cam.uri, snapshot=cam.snapshot, jpeg=settings)
        except SourceError as exc:
            raise CommandFailed(ErrorCode.FAILED, f"camera {camera_id}: {exc.message}") from exc
        topic = self.d.topics.camera_snapshot(camera_id)
        msg_id = self.d.outbox.put(Record(topic, jpeg, Priority.SNAPSHOT))
        return {"topic": topic, "msg_id": msg_id, "bytes": len(jpeg)}

    def status(self) -> dict[str, Any]:
        statuses = self.d.board.snapshot()
        return {
            "version": __version__,
            "cameras": {cid: {"state": s.state.value, "reason": s.reason.value, "since": s.since}
                        for cid, s in statuses.items()},
            "outbox": self.d.outbox.stats().as_dict(),
            "broker_connected": self.d.client.connected,
        }

    def reload_config(self) -> dict[str, Any]:
        """Validate first (so the station hears what is wrong), then reload exactly as SIGHUP does."""
        try:
            cfg = load_config(self.d.config_path)
        except ConfigError as exc:
            first = "; ".join(str(i) for i in exc.issues[:3])
            raise CommandFailed(ErrorCode.FAILED, f"configuration not reloaded: {first}") from exc
        os.kill(os.getpid(), signal.SIGHUP)
        return {"cameras_configured": len(cfg.cameras)}

    def rebirth(self) -> dict[str, Any]:
        """Re-publish every retained topic: the agent's `online` (same session) and each camera's last motion
        ON/OFF (the client remembers what the relay sent), every camera's status, Home Assistant discovery."""
        count = self.d.client.rebirth()
        count += self.d.health.rebirth()
        if self.d.cfg.health.home_assistant.enabled:
            count += self.d.publish_ha_discovery()
        return {"republished": count}

    def set_camera(self, camera_id: str, enabled: bool) -> dict[str, Any]:
        self.d.set_runtime_enabled(camera_id, enabled)
        return {"camera": camera_id, "enabled": enabled}
