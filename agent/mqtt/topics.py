"""Every MQTT topic the agent publishes or subscribes to is built here, and only here (docs/mqtt.md lists them).

The prefix defaults to `matthan/v1/<site>/<agent>`: the contract version sits in the topic so a station can run
two versions side by side during an upgrade. Identifiers that become topic levels (camera ids, event ids, command
names) are checked: an id with `/`, `+`, `#` or NUL would change which topic is meant, so it is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CONTRACT_VERSION = "v1"
HA_DISCOVERY_PREFIX = "homeassistant"  # Home Assistant's default discovery prefix
_BAD_LEVEL = re.compile(r"[/+#\x00]")
_HA_ID = re.compile(r"[^a-zA-Z0-9_-]")


class TopicError(ValueError):
    """An identifier cannot be used as a topic level; the message says which and why."""


def level(value: str, what: str = "identifier") -> str:
    """Check one topic level (no separators or wildcards, not empty, at most 128 characters)."""
    if not value or len(value) > 128 or _BAD_LEVEL.search(value):
        raise TopicError(f"{what} {value!r} cannot be an MQTT topic level (empty, too long, or contains / + # NUL)")
    return value


def default_prefix(site: str, agent: str) -> str:
    return f"matthan/{CONTRACT_VERSION}/{level(site, 'site id')}/{level(agent, 'agent id')}"


def ha_object_id(value: str) -> str:
    """Home Assistant node/object ids allow only [a-zA-Z0-9_-]; anything else becomes `_`."""
    return _HA_ID.sub("_", value)


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic builder for one agent. `prefix` has no trailing slash."""

    prefix: str
    ha_prefix: str = HA_DISCOVERY_PREFIX

    def __post_init__(self) -> None:
        if not self.prefix or self.prefix.endswith("/") or "+" in self.prefix or "#" in self.prefix:
            raise TopicError(f"topic prefix {self.prefix!r} must be non-empty, without wildcards or trailing '/'")

    # -- agent -------------------------------------------------------------------------------------------------
    def status(self) -> str:
        """Retained online/offline of the agent (also its last will)."""
        return f"{self.prefix}/status"

    def health(self) -> str:
        return f"{self.prefix}/health"

    def gap(self) -> str:
        return f"{self.prefix}/gap"

    def ack(self) -> str:
        """Retained station acknowledgement `{"seq": N}` (published by the station, read by the agent)."""
        return f"{self.prefix}/ack"

    # -- cameras -----------------------------------------------------------------------------------------------
    def camera_status(self, camera_id: str) -> str:
        return f"{self.prefix}/cameras/{level(camera_id, 'camera id')}/status"

    def camera_motion(self, camera_id: str) -> str:
        return f"{self.prefix}/cameras/{level(camera_id, 'camera id')}/motion"

    def camera_snapshot(self, camera_id: str) -> str:
        """A JPEG taken on request (the `snapshot` command), not tied to a motion event."""
        return f"{self.prefix}/cameras/{level(camera_id, 'camera id')}/snapshot"

    # -- events ------------------------------------------------------------------------------------------------
    def events_motion(self) -> str:
        return f"{self.prefix}/events/motion"

    def event_snapshot(self, event_id: str) -> str:
        return f"{self.prefix}/events/motion/{level(event_id, 'event id')}/snapshot"

    # -- commands ----------------------------------------------------------------------------------------------
    def cmd(self, name: str) -> str:
        return f"{self.prefix}/cmd/{level(name, 'command name')}"

    def cmd_filter(self) -> str:
        """The subscription for every command."""
        return f"{self.prefix}/cmd/#"

    def cmd_name(self, topic: str) -> str | None:
        """The command name of a topic under `cmd/`, or None for anything else (including deeper levels)."""
        head = f"{self.prefix}/cmd/"
        if not topic.startswith(head):
            return None
        name = topic[len(head):]
        return name if name and "/" not in name else None

    def cmd_resp(self, name: str) -> str:
        return f"{self.prefix}/cmd_resp/{level(name, 'command name')}"

    # -- Home Assistant discovery ------------------------------------------------------------------------------
    def ha_config(self, component: str, node_id: str, object_id: str) -> str:
        """`<ha_prefix>/<component>/<node_id>/<object_id>/config` (retained)."""
        return f"{self.ha_prefix}/{component}/{ha_object_id(node_id)}/{ha_object_id(object_id)}/config"

    def ha_status(self) -> str:
        """Home Assistant announces `online` here when it starts: re-publish discovery then."""
        return f"{self.ha_prefix}/status"
