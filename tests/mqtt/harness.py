"""The agent side of the broker tests: outbox + client + relay wired like the composition root does, a producer of
motion events at a fixed rate, and the station-side checks (every id received, duplicate rate)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.models import EventKind, MotionEvent
from agent.mqtt import MqttClient, MqttSettings, Relay, RelaySettings, records
from agent.mqtt.topics import Topics
from agent.outbox import Outbox
from tests.rig.broker import Broker, Collector

PREFIX = "matthan/v1/test-site/agent1"


def mqtt_settings(broker: Broker, **kw: Any) -> MqttSettings:
    """Fast settings for tests: short keepalive and timeouts so outages are noticed in seconds."""
    base: dict[str, Any] = {"host": broker.host, "port": broker.port, "client_id": "agent1", "prefix": PREFIX,
                            "keepalive_s": 5, "connect_timeout_s": 3.0, "backoff_min_s": 0.2, "backoff_max_s": 2.0,
                            "username": broker.username, "password": broker.password,
                            "tls": broker.variant == "tls", "ca_file": str(broker.ca_path) if broker.ca_path else None}
    base.update(kw)
    return MqttSettings(**base)


@dataclass
class Agent:
    """Outbox, client and relay in this process."""

    outbox: Outbox
    client: MqttClient
    relay: Relay

    @classmethod
    def make(cls, broker: Broker, state: Path, relay: RelaySettings | None = None, *,
             outbox_kw: dict[str, Any] | None = None, **mqtt_kw: Any) -> Agent:
        ob = Outbox(state / "outbox.sqlite3", agent_id="agent1", **(outbox_kw or {}))
        client = MqttClient(mqtt_settings(broker, **mqtt_kw))
        return cls(ob, client, Relay(ob, client, relay or RelaySettings()))

    @property
    def topics(self) -> Topics:
        return self.client.topics

    def start(self) -> Agent:
        self.client.start()
        self.relay.start()
        return self

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """Poll (with a deadline) until the relay has seen the connection come up."""
        deadline = time.monotonic() + timeout
        while not self.relay.stats()["connected"]:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)  # the relay thread books the CONNACK; poll it with a deadline
        return True

    def stop(self) -> None:
        self.relay.stop()
        self.client.stop()
        self.outbox.close()


@dataclass
class Producer:
    """Puts motion events (start/end alternating, two cameras) at `rate` per second until stopped."""

    outbox: Outbox
    topics: Topics
    rate: float = 10.0
    cameras: tuple[str, ...] = ("cam1", "cam2")
    produced: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Producer:
        self._thread = threading.Thread(target=self._run, name="producer", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(1.0 / self.rate):
            cam = self.cameras[n % len(self.cameras)]
            now = time.time()
            ev = MotionEvent(f"{cam}-{n // 2}", cam, EventKind.START if n % 4 < 2 else EventKind.END, now, now)
            self.produced.extend(self.outbox.put_many(records.motion_event(self.topics, ev)))
            n += 1

    def stop(self) -> list[str]:
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        return list(self.produced)


def event_ids(col: Collector) -> list[str]:
    """msg_ids of the motion events the station received, in arrival order (duplicates included)."""
    out = []
    for m in list(col.messages):
        if m.topic.endswith("/events/motion"):
            out.append(json.loads(m.payload)["msg_id"])
    return out


def events(col: Collector) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in list(col.messages) if m.topic.endswith("/events/motion")]


def wait_all(col: Collector, wanted: list[str], timeout: float) -> bool:
    """Wait (with a deadline, woken by each new message) until every wanted msg_id has arrived."""
    want, seen, i = set(wanted), set(), 0
    deadline = time.monotonic() + timeout
    while True:
        msgs = list(col.messages)
        seen.update(json.loads(m.payload)["msg_id"] for m in msgs[i:] if m.topic.endswith("/events/motion"))
        i = len(msgs)
        if want <= seen:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        col.wait_for(lambda ms: len(ms) > i, min(left, 1.0))  # noqa: B023 (i is read at call time on purpose)


def duplicate_rate(col: Collector) -> tuple[int, int, float]:
    ids = event_ids(col)
    dups = len(ids) - len(set(ids))
    return len(ids), dups, dups / max(1, len(set(ids)))
