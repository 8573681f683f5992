"""MQTT: the contract (topics, payloads), the broker connection and the outbox relay. docs/mqtt.md is the spec.

Wiring, as the composition root does it (agent/mqtt never reads the configuration itself)::

    outbox = Outbox(state_dir / "outbox.sqlite3", agent_id=cfg.agent_id,
                    max_bytes=cfg.storage.outbox_max_bytes, max_rows=cfg.storage.outbox_max_rows)
    client = MqttClient(MqttSettings(host=..., port=..., client_id=..., prefix=cfg.topic_prefix, username=...,
                                     password=..., tls=..., ca_file=..., keepalive_s=cfg.mqtt.keepalive, ...))
    relay = Relay(outbox, client, RelaySettings(window=cfg.mqtt.inflight_window,
                                                replay_rate=cfg.mqtt.replay_rate_per_s,
                                                station_ack=cfg.mqtt.station_ack))
    client.on_command(handler)           # InboundMessage(topic, payload, retain, response_topic, correlation_data)
    client.on_connected(republish_hook)  # e.g. Home Assistant discovery
    client.start(); relay.start()
    ...
    outbox.put_many(records.motion_event(client.topics, event, jpeg))   # durable before it returns
    client.publish_state(client.topics.camera_status(cam), payloads.camera_status(status))  # retained, latest only
    ...
    relay.stop(); client.stop(); outbox.close()     # client.stop() publishes the explicit `offline`

Camera worker processes open their own `Outbox(path, agent_id=..., owner=False)` and put events directly; only
the supervisor's instance (owner=True) checks integrity at start, claims and acks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.lazy import lazy_exports

_EXPORTS = {
    "MqttClient": "agent.mqtt.client",
    "InboundMessage": "agent.mqtt.events",
    "Relay": "agent.mqtt.relay",
    "MqttSettings": "agent.mqtt.settings",
    "RelaySettings": "agent.mqtt.settings",
    "TopicError": "agent.mqtt.topics",
    "Topics": "agent.mqtt.topics",
    "default_prefix": "agent.mqtt.topics",
}
# Loaded on first use (agent.lazy): camera workers build topics, payloads and outbox records but never talk to the
# broker, and paho-mqtt with the client and relay cost each of them ~6 MB of memory for nothing.
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:
    from agent.mqtt.client import MqttClient
    from agent.mqtt.events import InboundMessage
    from agent.mqtt.relay import Relay
    from agent.mqtt.settings import MqttSettings, RelaySettings
    from agent.mqtt.topics import TopicError, Topics, default_prefix

__all__ = ["InboundMessage", "MqttClient", "MqttSettings", "Relay", "RelaySettings", "TopicError", "Topics",
           "default_prefix"]
