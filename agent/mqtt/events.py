"""What the MQTT client hands to other threads: connection events and PUBACKs for the relay (one queue), and
inbound messages for the handlers registered with `MqttClient.subscribe`/`on_command`. Frozen, so a value handed
over from paho's network thread can never change behind the receiver's back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Connected:
    generation: int
    session: str
    receive_maximum: int  # the broker's limit on our QoS 1 messages in flight


@dataclass(frozen=True, slots=True)
class Disconnected:
    generation: int
    reason: str


@dataclass(frozen=True, slots=True)
class PubAck:
    generation: int
    mid: int
    reason_code: int  # MQTT v5 reason code: < 0x80 success (0x10 = no matching subscribers), >= 0x80 failure


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message on a subscribed topic, as handed to a handler (commands, station ack, HA status)."""

    topic: str
    payload: bytes
    retain: bool
    response_topic: str | None = None
    correlation_data: bytes | None = None


Handler = Callable[[InboundMessage], None]
