"""MQTT: the contract (topics, payloads), the broker connection and the outbox relay. docs/mqtt.md is the spec."""

from agent.mqtt.client import InboundMessage, MqttClient
from agent.mqtt.relay import Relay
from agent.mqtt.settings import MqttSettings, RelaySettings
from agent.mqtt.topics import TopicError, Topics, default_prefix

__all__ = ["InboundMessage", "MqttClient", "MqttSettings", "Relay", "RelaySettings", "TopicError", "Topics",
           "default_prefix"]
