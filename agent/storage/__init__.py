"""Files the agent keeps in its state directory (the outbox database lives in agent/outbox)."""

from agent.storage.snapshots import SnapshotStore

__all__ = ["SnapshotStore"]
