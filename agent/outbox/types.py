"""Values that go into and come out of the outbox.

A `Record` is what a producer (camera worker, health thread, command handler) hands to `Outbox.put`: a finished
MQTT topic and payload plus a priority class. A `Row` is what the relay gets back from `Outbox.claim`, with the
identity the outbox gave it (seq, msg_id) in the same transaction that stored it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Priority(enum.IntEnum):
    """Priority class of a row. When the outbox is full the lowest class is evicted first, oldest first.

    Command responses sit between event updates and event start/end: an answer the station waited for is worth
    more than an intermediate update, but once old it is worth less than the record that motion happened. Gap
    records go last: they are the only trace of what was dropped (and they are merged, so there are few of them).
    """

    HEALTH = 0
    SNAPSHOT = 1
    EVENT_UPDATE = 2
    COMMAND_RESPONSE = 3
    EVENT = 4  # motion event start and end
    GAP = 5  # written by the outbox itself when it evicts; rendered on the wire by the relay

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Record:
    """One message to deliver. `payload` is final except for the envelope fields the relay stamps at send time."""

    topic: str
    payload: bytes
    priority: Priority
    qos: int = 1
    retain: bool = False
    correlation: bytes | None = None  # MQTT v5 correlation data of a command response

    def __post_init__(self) -> None:
        if self.qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, not {self.qos}")
        if self.priority != Priority.GAP and not self.topic:
            raise ValueError("a record needs a topic")
        if any(c in self.topic for c in "+#\x00") or len(self.topic.encode()) > 65_535:
            raise ValueError(f"{self.topic[:80]!r} cannot be published (wildcard, NUL or longer than 65535 bytes)")


@dataclass(frozen=True, slots=True)
class Row:
    """A stored record with its identity. `msg_id` is `<agent>-<boot>-<seq>`, fixed when the row was stored."""

    seq: int
    msg_id: str
    topic: str
    payload: bytes
    priority: Priority
    qos: int
    retain: bool
    created: float  # UTC epoch when stored
    attempts: int  # how many times the relay has claimed it, this one included
    historical: bool  # stored while the link was down (or before this connection): replayed, paced
    sent: bool = False  # the broker took it; kept only until the station confirms (station-ack mode)
    correlation: bytes | None = None


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """What health reports about the outbox (the keys of `as_dict` are part of the health payload)."""

    depth: int  # rows waiting (including rows sent but not yet confirmed by the station)
    bytes: int  # accounted bytes of those rows
    oldest_age_s: float | None  # age of the oldest waiting row; None when empty
    dead_letters: int  # rows the broker refused, total since the file was created
    evicted_rows: int  # rows dropped because the outbox was full, total since the file was created
    evicted_by_class: dict[str, int] = field(default_factory=dict)
    unconfirmed: int = 0  # sent rows kept for the station's acknowledgement
    files_set_aside: int = 0  # corrupt files moved aside by this process

    def as_dict(self) -> dict[str, object]:
        return {
            "depth": self.depth,
            "bytes": self.bytes,
            "oldest_age_s": None if self.oldest_age_s is None else round(self.oldest_age_s, 3),
            "dead_letters": self.dead_letters,
            "evicted_rows": self.evicted_rows,
            "evicted_by_class": dict(self.evicted_by_class),
            "unconfirmed": self.unconfirmed,
            "files_set_aside": self.files_set_aside,
        }
