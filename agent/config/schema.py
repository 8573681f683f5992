"""The whole agent configuration: the root model and the small sections that need no module of their own."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from pydantic import ByteSize, field_validator, model_validator

from agent.config.fields import Strict, cross_field, field
from agent.config.schema_camera import CameraEntry, MotionConfig, StreamChoice, is_snapshot_url
from agent.config.schema_network import DiscoveryConfig, MqttConfig
from agent.config.types import Name, default_agent_id

MIB = 1024 * 1024
IDENTITY_KEYS = ("name", "uuid", "ip")
INHERITED_SNAPSHOT_NEEDS_HTTP = (
    "motion.stream is snapshot, which polls pictures over HTTP, but this url is not http:// or https://; "
    "set stream: auto on this camera, or give its snapshot address as url"
)


def duplicate_identities(cameras: Sequence[Mapping[str, Any]]) -> list[tuple[tuple[str | int, ...], str]]:
    """(location, message) for each camera name, uuid or ip used twice.

    Takes plain mappings so the loader can run it on the raw file too: a duplicate is worth reporting even when
    another camera entry has an error of its own and the models could not be built.
    """
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for key in IDENTITY_KEYS:
        first: dict[str, int] = {}
        for index, camera in enumerate(cameras):
            value = camera.get(key)
            if value is None:
                continue
            text = str(value).strip().lower()
            if key == "uuid":
                text = text.removeprefix("urn:uuid:")
            if text in first:
                problems.append(
                    ((index, key), f"{key} '{value}' is already used by cameras[{first[text]}]; each must be unique")
                )
            else:
                first[text] = index
    return problems


class StorageConfig(Strict):
    """Where the agent keeps what must survive a reboot or a broken link."""

    state_dir: Path = field(
        Path("/var/lib/matthan-agent"), "directory for the outbox, inventory and snapshots", type_name="path"
    )
    outbox_max_bytes: ByteSize = field(
        ByteSize(256 * MIB), "disk the event outbox may use; oldest events are evicted beyond it (e.g. 256MiB)",
        ge=MIB, type_name="size", default_text="256MiB",
    )
    outbox_max_rows: int = field(200_000, "events the outbox may hold; oldest are evicted beyond it", ge=100)
    snapshot_quota_bytes: ByteSize = field(
        ByteSize(1024 * MIB), "disk the event snapshots may use; oldest are deleted beyond it (e.g. 1GiB)",
        ge=MIB, type_name="size", default_text="1GiB",
    )


class HomeAssistantConfig(Strict):
    """Home Assistant MQTT discovery messages, for stations that use Home Assistant."""

    enabled: bool = field(False, "publish Home Assistant discovery messages for cameras and health")
    discovery_prefix: str = field("homeassistant", "Home Assistant's MQTT discovery prefix", min_length=1)

    @field_validator("discovery_prefix")
    @classmethod
    def _topic_level(cls, value: str) -> str:
        if any(c in value for c in "+#\0") or value.startswith("/") or value.endswith("/"):
            raise ValueError("must be a topic prefix without +, # or a leading/trailing '/'")
        return value


class HealthConfig(Strict):
    """The periodic health report (host, outbox, cameras)."""

    interval_s: float = field(60.0, "seconds between health reports", ge=5, le=3600)
    home_assistant: HomeAssistantConfig = field(
        default_factory=HomeAssistantConfig, description="Home Assistant discovery", type_name="mapping"
    )


class WorkersConfig(Strict):
    """The camera worker processes."""

    count: int = field(0, "number of camera worker processes; 0 = one per CPU core", ge=0, le=64)


class LogLevel(enum.StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class LoggingConfig(Strict):
    """Logging (to stderr, collected by journald)."""

    level: LogLevel = field(LogLevel.INFO, "DEBUG, INFO, WARNING or ERROR", type_name="level")

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class AgentConfig(Strict):
    """The agent's configuration file."""

    site_id: Name = field(description="the commune or site, used in topics (e.g. xa-tan-phu)", type_name="name")
    agent_id: Name = field(
        default_factory=default_agent_id, description="this agent, used in topics",
        default_text="the host name, made topic-safe", type_name="name",
    )
    mqtt: MqttConfig = field(description="the station's MQTT broker", type_name="mapping")
    discovery: DiscoveryConfig = field(
        default_factory=DiscoveryConfig, description="finding cameras", type_name="mapping"
    )
    cameras: tuple[CameraEntry, ...] = field(
        (), "per-camera settings; cameras found by discovery and not listed here use the motion defaults",
        type_name="list of mappings",
    )
    motion: MotionConfig = field(
        default_factory=MotionConfig, description="motion detection defaults", type_name="mapping"
    )
    storage: StorageConfig = field(default_factory=StorageConfig, description="local storage", type_name="mapping")
    health: HealthConfig = field(default_factory=HealthConfig, description="health reports", type_name="mapping")
    workers: WorkersConfig = field(default_factory=WorkersConfig, description="worker processes", type_name="mapping")
    logging: LoggingConfig = field(default_factory=LoggingConfig, description="logging", type_name="mapping")

    @field_validator("cameras")
    @classmethod
    def _unique_cameras(cls, cameras: tuple[CameraEntry, ...]) -> tuple[CameraEntry, ...]:
        problems = duplicate_identities([{k: getattr(c, k) for k in IDENTITY_KEYS} for c in cameras])
        if problems:
            raise cross_field(problems)
        return cameras

    @model_validator(mode="after")
    def _inherited_snapshot(self) -> Self:
        # An entry's own `stream: snapshot` is checked by CameraEntry; this catches one inherited from motion:.
        if self.motion.stream is not StreamChoice.SNAPSHOT:
            return self
        problems: list[tuple[tuple[str | int, ...], str]] = [
            (("cameras", index, "url"), INHERITED_SNAPSHOT_NEEDS_HTTP)
            for index, camera in enumerate(self.cameras)
            if camera.url is not None and camera.stream is None and not is_snapshot_url(camera.url)
        ]
        if problems:
            raise cross_field(problems)
        return self

    @property
    def topic_prefix(self) -> str:
        """`mqtt.topic_prefix` with {site} and {agent} filled in."""
        return self.mqtt.topic_prefix.format(site=self.site_id, agent=self.agent_id)

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"matthan-{self.site_id}-{self.agent_id}"
