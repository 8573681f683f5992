"""Outbox test helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.outbox import Outbox, Priority, Record


@pytest.fixture
def make_outbox(tmp_path: Path) -> Iterator[Callable[..., Outbox]]:
    """Open outboxes in the test's tmp dir; all are closed at the end."""
    opened: list[Outbox] = []

    def make(name: str = "outbox.sqlite3", **kw: object) -> Outbox:
        kw.setdefault("agent_id", "agent1")
        ob = Outbox(tmp_path / name, **kw)  # type: ignore[arg-type]
        opened.append(ob)
        return ob

    yield make
    for ob in opened:
        ob.close()  # closing twice is harmless


def rec(prio: Priority = Priority.EVENT, size: int = 100, topic: str = "t/events/motion") -> Record:
    return Record(topic, b"{" + b"x" * max(0, size - 2) + b"}", prio)
