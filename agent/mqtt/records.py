"""Turning the agent's models into outbox records: which topic, which payload, which priority class.

Producers (camera workers, health, commands) call these and hand the result to `Outbox.put`/`put_many`; the
relay does the rest. Kept apart from payloads.py because it needs the outbox's types.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.models import EventKind, HealthSample, MotionEvent
from agent.mqtt import payloads
from agent.mqtt.topics import Topics
from agent.outbox import Priority, Record


def motion_event(topics: Topics, event: MotionEvent, snapshot_jpeg: bytes | None = None) -> list[Record]:
    """The event (and its snapshot, first, so the reference in the event points at something already queued)."""
    records = []
    snap_topic = None
    if snapshot_jpeg is not None:
        snap_topic = topics.event_snapshot(event.event_id)
        records.append(Record(snap_topic, payloads.snapshot(snapshot_jpeg), Priority.SNAPSHOT))
    prio = Priority.EVENT_UPDATE if event.kind == EventKind.UPDATE else Priority.EVENT
    records.append(Record(topics.events_motion(), payloads.motion_event(event, snapshot_topic=snap_topic), prio))
    return records


def health(topics: Topics, sample: HealthSample) -> Record:
    return Record(topics.health(), payloads.health(sample), Priority.HEALTH)


def command_response(topics: Topics, name: str, body: Mapping[str, Any], *, response_topic: str | None = None,
                     correlation: bytes | None = None) -> Record:
    """Answer on the request's v5 response topic if it gave a usable one, else on `cmd_resp/<name>`.

    A response topic with a wildcard or NUL cannot be published to; the answer then goes to the default topic
    rather than nowhere (the correlation data still identifies it)."""
    usable = response_topic and not any(c in response_topic for c in "+#\x00") and len(response_topic) < 1024
    return Record(response_topic if usable else topics.cmd_resp(name),  # type: ignore[arg-type]
                  payloads.command_response(body), Priority.COMMAND_RESPONSE, correlation=correlation)
