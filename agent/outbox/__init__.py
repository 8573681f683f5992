"""Durable, bounded, prioritised store of outgoing MQTT messages (SQLite WAL). See store.py for the design."""

from agent.outbox.schema import OutboxCorrupt
from agent.outbox.store import ROW_OVERHEAD_BYTES, Outbox
from agent.outbox.types import OutboxStats, Priority, Record, Row

__all__ = ["ROW_OVERHEAD_BYTES", "Outbox", "OutboxCorrupt", "OutboxStats", "Priority", "Record", "Row"]
